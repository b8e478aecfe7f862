"""MQTT for the device: one broker connection per agent (update trigger, sensor data, state
reports). Light at import: ``aiomqtt`` (and paho) load only when a connection starts."""
