"""Run the real `iotistic-agent` console script as a child process, the way users do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration import dockerkit
from tests.integration.waiting import wait_for

AGENT = Path(sys.executable).with_name("iotistic-agent")


class AgentProcess:
    def __init__(self, data_dir: Path, interval_ms: int = 1000, **env: str) -> None:
        self.data_dir = data_dir
        self.port = dockerkit.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "agent.log"
        self.env = {
            **os.environ,
            "DATABASE_PATH": str(data_dir / "device.sqlite"),
            "DEVICE_API_PORT": str(self.port),
            "RECONCILIATION_INTERVAL_MS": str(interval_ms),
            "LOG_LEVEL": "debug",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def database(self) -> Path:
        return Path(self.env["DATABASE_PATH"])

    def start(self) -> AgentProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([str(AGENT)], env=self.env, stdout=log, stderr=log)
        wait_for(self._answers, 20, message=f"agent did not answer /ping; log:\n{self.log()}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"agent exited with {self.proc.returncode}; log:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/ping", timeout=1).text == "OK"
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 10) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    # --- Device API -------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        return (self.data_dir / "device-api.key").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", headers=self.headers, timeout=10, **kwargs)

    def post_target(self, target: dict[str, Any]) -> httpx.Response:
        return self.post("/v2/local/target-state", json=target)

    def set_target(self, target: dict[str, Any]) -> None:
        response = self.post_target(target)
        assert response.status_code == 200, response.text

    def apps_state(self) -> dict[str, Any]:
        response = self.get("/v2/applications/state")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def service_state(self, app_id: int, name: str) -> dict[str, Any]:
        state: dict[str, Any] = self.apps_state()[str(app_id)]["services"][name]
        return state

    def wait_status(
        self, app_id: int, name: str, status: str, timeout: float = 60
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            try:
                s = self.service_state(app_id, name)
            except (KeyError, httpx.HTTPError):
                return None
            return s if s["status"] == status else None

        return wait_for(
            reached,
            timeout,
            0.2,
            f"{app_id}/{name} never reached {status}; log tail:\n{self.log()[-3000:]}",
        )


def managed_containers(app_id: int | None = None) -> list[dict[str, Any]]:
    """`docker inspect` of every managed container (optionally of one app)."""
    label = "io.iotistic.managed=true"
    args = ["ps", "--all", "--quiet", "--filter", f"label={label}"]
    if app_id is not None:
        args += ["--filter", f"label=io.iotistic.app-id={app_id}"]
    ids = dockerkit.docker(*args).stdout.split()
    if not ids:
        return []
    # A container may go between the listing and the inspect (the agent is replacing it):
    # docker then exits 1 but still prints the ones it found.
    proc = dockerkit.docker("inspect", *ids, check=False)
    if proc.returncode != 0 and "No such object" not in proc.stderr:
        raise dockerkit.DockerError(
            ["docker", "inspect", *ids], proc.returncode, proc.stdout, proc.stderr
        )
    result: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return result


def service_containers(app_id: int, name: str) -> list[dict[str, Any]]:
    return [
        c
        for c in managed_containers(app_id)
        if c["Config"]["Labels"].get("io.iotistic.service-name") == name
    ]


def target(*apps: dict[str, Any]) -> dict[str, Any]:
    return {"apps": {str(a["appId"]): a for a in apps}}


def app(app_id: int, *services: dict[str, Any], name: str = "demo") -> dict[str, Any]:
    return {"appId": app_id, "appName": name, "services": list(services)}


def svc(service_id: int, name: str, image: str, **extra: Any) -> dict[str, Any]:
    config = extra.pop("config", {})
    return {
        "serviceId": service_id,
        "serviceName": name,
        "imageName": image,
        "config": config,
        **extra,
    }
