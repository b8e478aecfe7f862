"""Command groups of iotctl; each module imports only typer at load time."""
