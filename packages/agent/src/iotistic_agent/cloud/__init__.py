"""Cloud sync: poll the target state, report the current state, survive outages."""
