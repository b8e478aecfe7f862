-- Cloud sync: state reports that could not be sent yet (delivered oldest first), and small
-- values that must survive a restart (the last target ETag, the report sequence).
CREATE TABLE report_queue (
    sequence INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    createdAt REAL NOT NULL
);

CREATE TABLE sync_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
