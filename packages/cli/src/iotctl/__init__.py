"""iotctl: the device's command-line tool for the agent's local Device API."""

__version__ = "0.1.0"
