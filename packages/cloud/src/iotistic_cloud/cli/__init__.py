"""The ``iotistic-cloud`` command line: serve the API and administer the fleet."""
