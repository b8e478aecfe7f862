-- One row that GET /v1/healthy rewrites now and then through a connection of its own:
-- proof that the database still takes writes (device_api/health.py).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checkedAt REAL NOT NULL
);
