"""`iotistic-agent`'s command line: only `--help` and `--version`, and a refusal of anything
else. The agent is configured through its environment (docs/agent.md, "Settings"); parsing
happens before the settings are read, so neither option starts anything or touches the
engine, and a mistyped argument never starts an agent by accident."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

DESCRIPTION = """\
The Iotistic device agent: keeps this device's containers equal to its target state (from
the cloud once provisioned, or from the local Device API), reports to the cloud and serves
the Device API that iotctl uses. It runs until SIGTERM or SIGINT."""

EPILOG = """\
settings come from the environment (all of them: docs/agent.md, "Settings"); the main ones:
  DATABASE_PATH         the device's database; its folder holds the device's data
                        (default: /var/lib/iotistic/device.sqlite as root, otherwise
                        $XDG_DATA_HOME/iotistic/device.sqlite or
                        ~/.local/share/iotistic/device.sqlite)
  DOCKER_HOST           the Docker engine to drive (default unix:///var/run/docker.sock)
  DEVICE_API_HOST       address of the Device API (default 127.0.0.1)
  DEVICE_API_PORT       port of the Device API (default 48484)
  CLOUD_API_ENDPOINT    the cloud's URL, to provision with PROVISIONING_API_KEY
  LOG_LEVEL             debug, info, warn or error (default info)

exit codes: 0 stopped, 1 could not start or failed, 2 invalid settings or arguments"""


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(
        prog="iotistic-agent",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    result.add_argument("--version", action="version", version=f"iotistic-agent {__version__}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """The `iotistic-agent` command and `python -m iotistic_agent`: exits 0 after `--help`
    or `--version`, 2 with a message for anything it does not know, else runs the agent."""
    parser().parse_args(sys.argv[1:] if argv is None else argv)
    # Imported only now: `--help` answers at once, without loading the agent.
    from .agent import main as run_agent

    run_agent()
