"""Iotistic cloud: provisioning, target states and reported states of a device fleet."""
