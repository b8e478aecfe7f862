"""Simulation: sensor data, anomaly injection and a memory leak, for testing without hardware.

Nothing here touches real hardware; every simulated reading is labelled (``sensor_id``
starts with ``sim_``) so that reports and the cloud can tell it from a real one.
"""
