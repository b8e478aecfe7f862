"""The HTTP API (FastAPI): device routes, provisioning, admin, health."""
