"""`python -m iotistic_agent`: how the agent re-executes itself on restart."""

from .agent import main

main()
