"""Wire models shared by the Iotistic agent and cloud."""
