"""`python -m iotistic_agent`: what the agent re-executes on restart. Importing this module
starts nothing."""

from .command_line import main

if __name__ == "__main__":
    main()
