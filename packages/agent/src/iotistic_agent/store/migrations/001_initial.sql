-- Device identity (one row), the persisted target state (one row, the current one) and
-- per-service failure records that must survive an agent restart.
CREATE TABLE device (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    uuid TEXT NOT NULL UNIQUE,
    deviceId TEXT,
    deviceName TEXT,
    deviceType TEXT,
    apiKey TEXT,
    apiEndpoint TEXT,
    registeredAt INTEGER,
    provisioned INTEGER NOT NULL DEFAULT 0,
    mqttBrokerUrl TEXT,
    mqttUsername TEXT,
    mqttPassword TEXT,
    mqttBrokerConfig TEXT,
    apiTlsConfig TEXT,
    createdAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updatedAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE target_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    apps TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    state_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    updatedAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE service_status (
    app_id INTEGER NOT NULL,
    service_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    retry_count INTEGER NOT NULL,
    next_retry_at REAL NOT NULL,
    last_failure_at REAL NOT NULL,
    config_hash TEXT NOT NULL,
    gave_up INTEGER NOT NULL DEFAULT 0,
    marker TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (app_id, service_name)
);
