-- Provisioning: the device table of 001 already has the spec's columns; this records when an
-- operator deprovisioned the device, so that a restart with PROVISIONING_API_KEY still set
-- does not silently register it again.
ALTER TABLE device ADD COLUMN deprovisionedAt INTEGER;
