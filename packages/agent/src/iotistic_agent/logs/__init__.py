"""The agent's own logs and the logs of the containers it runs."""
