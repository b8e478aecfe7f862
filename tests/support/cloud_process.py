"""Run the real ``iotistic-cloud`` console script, as users and replicas do.

    cloud = CloudProcess(tmp_path / "cloud", database_url=server.create_database("e2e")).start()
    cloud.url                       # http://127.0.0.1:<port> (read from its own log line)
    cloud.cli("keys", "create", "--quiet").stdout.strip()   # a provisioning key
    cloud.stop()

Without ``database_url`` it uses SQLite in its data directory. ``serve --port 0`` lets the
kernel choose the port; the process logs the address it really listens on. ``executable``
runs another installation's ``iotistic-cloud`` (a benchmark's earlier release). Agents in
the tests poll and report every few hundred milliseconds, and benchmarks provision dozens
of devices with one key, far faster than the default rate limits allow: the helper turns
both limits off (DEVICE_ and PROVISIONING_RATE_LIMIT_PER_MIN=0) unless the caller sets
them (tests/cloud/test_rate_limits.py and the benchmarks of the limits do).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Final

import httpx

from tests.integration.waiting import wait_for

CLOUD: Final = Path(sys.executable).with_name("iotistic-cloud")
ADMIN_TOKEN: Final = "test-admin-token-0123456789"
START_TIMEOUT_S: Final = 30
_LISTENING_RE: Final = re.compile(r"iotistic-cloud listening on (http://\S+)")


class CloudProcess:
    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        admin_token: str = ADMIN_TOKEN,
        executable: Path = CLOUD,
        **env: str,
    ) -> None:
        self.data_dir = data_dir
        self.executable = executable
        self.log_path = data_dir / "cloud.log"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "ADMIN_TOKEN", "CLOUD_PUBLIC_URL")
        }
        self.env.update(
            {
                "CLOUD_DATA_DIR": str(data_dir),
                "ADMIN_TOKEN": admin_token,
                "DEVICE_RATE_LIMIT_PER_MIN": "0",
                "PROVISIONING_RATE_LIMIT_PER_MIN": "0",
                **env,
            }
        )
        if database_url is not None:
            self.env["DATABASE_URL"] = database_url
        self.admin_token = admin_token
        self.proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        # Where this run's output starts: a reused data dir keeps older runs' lines.
        self._log_start = 0

    @property
    def url(self) -> str:
        assert self._url is not None, "start() the cloud first"
        return self._url

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def start(self, *args: str) -> CloudProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.executable), "serve", "--host", "127.0.0.1", "--port", "0", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
            )
        self._url = wait_for(
            self._listening, START_TIMEOUT_S, message=f"cloud did not start; log:\n{self.log()}"
        )
        wait_for(self._healthy, START_TIMEOUT_S, message=f"cloud is not healthy:\n{self.log()}")
        return self

    def _listening(self) -> str | None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"cloud exited with {self.proc.returncode}; log:\n{self.log()}")
        match = _LISTENING_RE.search(self.log())
        return match.group(1) if match else None

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        """This run's output (since the last start)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``iotistic-cloud <args>`` against the same database; never raises on failure."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            [str(self.executable), *args],
            env=self.env,
            cwd=self.data_dir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
