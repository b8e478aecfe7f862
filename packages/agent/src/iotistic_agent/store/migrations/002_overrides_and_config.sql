-- Local overrides from the Device API (a service stopped by hand stays stopped until it is
-- started again or its target changes) and runtime configuration set through `iotctl config`.
CREATE TABLE service_override (
    app_id INTEGER NOT NULL,
    service_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('stopped')),
    config_hash TEXT NOT NULL,
    createdAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (app_id, service_name)
);

CREATE TABLE config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updatedAt TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
