"""The cloud's behaviour, shared by the HTTP API and the admin CLI (neither has its own)."""
