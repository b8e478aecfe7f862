-- Detected anomalies (the spec's table, plus source, quality and threshold as columns rather
-- than inside metadata); bounded by AnomalyStore, oldest rows pruned first.
CREATE TABLE anomaly_detections (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    expected REAL,
    deviation REAL,
    method TEXT NOT NULL,
    severity TEXT NOT NULL,
    confidence REAL NOT NULL,
    quality TEXT NOT NULL,
    threshold REAL,
    timestamp INTEGER NOT NULL,
    metadata TEXT
);

CREATE INDEX anomaly_detections_timestamp ON anomaly_detections (timestamp);
