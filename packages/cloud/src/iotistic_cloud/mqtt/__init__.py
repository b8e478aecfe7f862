"""The cloud's side of MQTT: device accounts on the broker, state reports, update triggers."""
