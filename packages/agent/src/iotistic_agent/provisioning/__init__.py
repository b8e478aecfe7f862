"""Device provisioning with the cloud (two-phase key exchange, then sealed registration).

Nothing is imported here: `service` is light and loaded at start-up, while the modules that
need ``cryptography`` (`register`, `keys`) are imported only when a registration runs.
"""
