"""`iotctl`, the installed console script, against the real agent and the real Docker engine.

Every test runs the executable as a subprocess, the way people do, with the agent fixture's
DEVICE_API_URL and DATABASE_PATH, and checks both what it prints and what happened to the
containers.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest

from tests.integration import dockerkit
from tests.integration.agent_process import (
    AgentProcess,
    app,
    managed_containers,
    service_containers,
    svc,
    target,
)
from tests.integration.dockerkit import ImageSet
from tests.integration.waiting import wait_for

IOTCTL = Path(sys.executable).with_name("iotctl")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (debug|info|warn|error) \S+ .+$")


def cli_env(agent: AgentProcess, **extra: str) -> dict[str, str]:
    env = {**agent.env, "DEVICE_API_URL": agent.url, **extra}
    if "IOTCTL_API_KEY" not in extra:
        env.pop("IOTCTL_API_KEY", None)  # the key must come from the agent's file
    return env


def iotctl(
    agent: AgentProcess, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(IOTCTL), *args],
        env=cli_env(agent, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def ok(agent: AgentProcess, *args: str, **env: str) -> str:
    """Run a command that must succeed and return its stdout."""
    proc = iotctl(agent, *args, **env)
    assert proc.returncode == 0, f"iotctl {' '.join(args)}: {proc.stderr}{proc.stdout}"
    return proc.stdout


def as_json(agent: AgentProcess, *args: str) -> Any:
    return json.loads(ok(agent, *args, "--json"))


def fails(agent: AgentProcess, *args: str, **env: str) -> str:
    """Run a command that must fail with exit 1 and a one-line error; return that line."""
    proc = iotctl(agent, *args, **env)
    assert proc.returncode == 1, f"iotctl {' '.join(args)} exited {proc.returncode}: {proc.stdout}"
    assert proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip()


def container(app_id: int, name: str) -> dict[str, Any]:
    found = service_containers(app_id, name)
    assert len(found) == 1, found
    return found[0]


def is_running(app_id: int, name: str) -> bool:
    found = service_containers(app_id, name)
    return len(found) == 1 and found[0]["State"]["Running"] is True


def is_stopped(app_id: int, name: str) -> bool:
    found = service_containers(app_id, name)
    return len(found) == 1 and found[0]["State"]["Running"] is False


def two_services(images: ImageSet, **worker: Any) -> dict[str, Any]:
    return target(app(1001, svc(1, "web", images.http), svc(2, "worker", images.v1, **worker)))


def deploy(agent: AgentProcess, images: ImageSet, **worker: Any) -> None:
    agent.set_target(two_services(images, **worker))
    agent.wait_status(1001, "web", "Running")
    agent.wait_status(1001, "worker", "Running")


class LineReader:
    """Collects a child's stdout lines on a thread, so a test can wait for one to appear."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def join(self) -> None:
        self._thread.join(10)


def follow(agent: AgentProcess, *args: str) -> tuple[subprocess.Popen[str], LineReader]:
    proc = subprocess.Popen(
        [str(IOTCTL), *args],
        env=cli_env(agent),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, LineReader(proc.stdout)


def interrupt(proc: subprocess.Popen[str], reader: LineReader) -> tuple[int, str]:
    """Ctrl-C the follower; return its exit code and stderr."""
    proc.send_signal(signal.SIGINT)
    returncode = proc.wait(15)
    reader.join()
    assert proc.stderr is not None
    return returncode, proc.stderr.read()


# --- device ----------------------------------------------------------------------------


def test_version_is_the_cli_version_and_needs_no_agent(agent: AgentProcess) -> None:
    agent.stop()
    assert ok(agent, "version").strip() == "iotctl 0.1.0"


def test_status_shows_the_device_for_people_and_as_json(agent: AgentProcess) -> None:
    device = as_json(agent, "status")
    assert device["uuid"] == agent.get("/v1/device").json()["uuid"]
    assert device["engine"]["reachable"] is True
    text = ok(agent, "status")
    assert device["uuid"] in text
    assert agent.url in text
    assert "\x1b[" not in text  # no colour codes when stdout is not a terminal
    assert agent.api_key not in text


def test_wrong_key_is_refused_and_never_printed(agent: AgentProcess) -> None:
    wrong = "not-the-key-" + "x" * 30
    line = fails(agent, "status", IOTCTL_API_KEY=wrong)
    assert line == "error: the device API key was refused"
    proc = iotctl(agent, "apps", "list", IOTCTL_API_KEY=wrong)
    assert wrong not in proc.stdout + proc.stderr


def test_explicit_key_from_the_environment_works(agent: AgentProcess) -> None:
    assert ok(agent, "status", IOTCTL_API_KEY=agent.api_key)


def test_agent_not_running_gets_a_clear_message(agent: AgentProcess) -> None:
    agent.stop()
    line = fails(agent, "status")
    assert line == f"error: cannot reach the agent at {agent.url}: is it running?"
    assert fails(agent, "apps", "list") == line


def test_unreadable_key_file_says_where_and_what_to_do(agent: AgentProcess, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "device.sqlite"
    line = fails(agent, "status", DATABASE_PATH=str(elsewhere))
    assert f"cannot read the device API key from {elsewhere.parent / 'device-api.key'}" in line
    assert "run as the agent's user or set IOTCTL_API_KEY" in line


def test_default_url_comes_from_device_api_port(agent: AgentProcess) -> None:
    env = {k: v for k, v in cli_env(agent).items() if k != "DEVICE_API_URL"}
    proc = subprocess.run(
        [str(IOTCTL), "status", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["uuid"]


def test_diagnostics_pass_on_a_healthy_agent_and_fail_when_a_check_fails(
    agent: AgentProcess,
) -> None:
    result = as_json(agent, "diagnostics")
    assert result["ok"] is True
    assert {c["name"] for c in result["checks"]} >= {"database", "docker"}
    assert "database" in ok(agent, "diag")

    # Nothing listens on this port: the cloud check fails, so diagnostics must exit 1.
    ok(agent, "config", "set-api", f"http://127.0.0.1:{dockerkit.free_port()}")
    proc = iotctl(agent, "diagnostics", "--json")
    assert proc.returncode == 1
    checks = {c["name"]: c["status"] for c in json.loads(proc.stdout)["checks"]}
    assert checks["cloud"] == "fail"
    assert iotctl(agent, "diag").returncode == 1


def test_provisioning_commands_answer_without_a_cloud(agent: AgentProcess) -> None:
    state = as_json(agent, "provision", "status")
    assert state["provisioned"] is False and state["inProgress"] is False
    assert state["uuid"] == agent.get("/v1/device").json()["uuid"]
    assert "not provisioned" in ok(agent, "provision", "status")
    secret = "prov-key-" + "s" * 20
    proc = iotctl(agent, "provision", secret)
    assert secret not in proc.stdout + proc.stderr
    # No endpoint configured, or one where nothing listens (an earlier test may set one).
    assert proc.returncode == 1
    assert "no cloud API endpoint" in proc.stderr or "is unreachable" in proc.stderr
    proc = iotctl(agent, "deprovision")
    assert proc.returncode == 1
    assert "the device is not provisioned" in proc.stderr


# --- apps ------------------------------------------------------------------------------


def test_apps_list_and_info(agent: AgentProcess, images: ImageSet) -> None:
    assert ok(agent, "apps", "list").strip() == "no apps"
    deploy(agent, images)
    listed = as_json(agent, "apps", "list")
    assert set(listed["1001"]["services"]) == {"web", "worker"}
    text = ok(agent, "apps", "list")
    assert re.search(r"1001\s+demo\s+web\s+Running", text), text
    assert re.search(r"1001\s+demo\s+worker\s+Running", text), text

    details = as_json(agent, "apps", "info", "1001")
    assert details["appName"] == "demo"
    assert {s["ref"] for s in details["services"]} == {"web-1", "worker-2"}
    text = ok(agent, "apps", "info", "1001")
    assert "App 1001 (demo)" in text
    assert "web-1" in text and "worker-2" in text

    assert "error: " in fails(agent, "apps", "info", "4242")
    assert iotctl(agent, "apps", "info", "not-a-number").returncode == 2


def test_apps_stop_holds_across_an_agent_restart_until_apps_start(
    agent: AgentProcess, images: ImageSet
) -> None:
    deploy(agent, images)
    assert "stopped" in ok(agent, "apps", "stop", "1001")
    wait_for(lambda: is_stopped(1001, "web") and is_stopped(1001, "worker"), 30)

    assert agent.terminate() == 0
    agent.start()
    # A second app converging proves reconciliation passes ran after the restart.
    agent.set_target(
        target(*two_services(images)["apps"].values(), app(1002, svc(1, "other", images.v1)))
    )
    agent.wait_status(1002, "other", "Running")
    assert is_stopped(1001, "web") and is_stopped(1001, "worker")
    services = as_json(agent, "services", "list", "1001")["services"]
    assert {s["override"] for s in services} == {"stopped"}

    assert "started" in ok(agent, "apps", "start", "1001")
    wait_for(lambda: is_running(1001, "web") and is_running(1001, "worker"), 60)


def test_apps_restart_recreates_every_service(agent: AgentProcess, images: ImageSet) -> None:
    deploy(agent, images)
    before = {name: container(1001, name)["Id"] for name in ("web", "worker")}
    ok(agent, "apps", "restart", "1001")

    def recreated() -> bool:
        return all(
            is_running(1001, name) and container(1001, name)["Id"] != old
            for name, old in before.items()
        )

    wait_for(recreated, 60)


def test_apps_purge_asks_first_and_then_empties_the_volume(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(
        target(app(1001, svc(1, "store", images.v1, config={"volumes": ["data:/data"]})))
    )
    agent.wait_status(1001, "store", "Running")
    old_id = container(1001, "store")["Id"]
    dockerkit.docker("exec", old_id, "sh", "-c", "echo kept > /data/file")

    declined = iotctl(agent, "apps", "purge", "1001", stdin="n\n")
    assert declined.returncode == 1
    assert "nothing was changed" in declined.stderr
    assert container(1001, "store")["Id"] == old_id

    assert "purged" in ok(agent, "apps", "purge", "1001", "--yes")

    def back_empty() -> bool:
        found = service_containers(1001, "store")
        if len(found) != 1 or found[0]["Id"] == old_id or not found[0]["State"]["Running"]:
            return False
        probe = dockerkit.docker("exec", found[0]["Id"], "ls", "/data", check=False)
        return probe.returncode == 0 and probe.stdout.strip() == ""

    wait_for(back_empty, 60, 0.2, ignore=(dockerkit.DockerError,))


# --- services --------------------------------------------------------------------------


def test_services_list_and_info_in_every_reference_form(
    agent: AgentProcess, images: ImageSet
) -> None:
    deploy(agent, images)
    services = as_json(agent, "services", "list")["services"]
    assert {s["ref"] for s in services} == {"web-1", "worker-2"}
    assert as_json(agent, "services", "list", "1001")["services"]
    assert re.search(r"web-1\s+1001\s+Running", ok(agent, "services", "list"))

    worker = container(1001, "worker")
    for ref in ("worker", "worker-2", "1001/worker", worker["Name"].lstrip("/")):
        info = as_json(agent, "services", "info", ref)
        assert info["containerId"] == worker["Id"], ref
    text = ok(agent, "services", "info", "1001/worker")
    assert "worker-2" in text and worker["Id"] in text

    assert "error: " in fails(agent, "services", "info", "no-such-service")


def test_services_stop_and_start_by_app_and_name(agent: AgentProcess, images: ImageSet) -> None:
    deploy(agent, images)
    ok(agent, "services", "stop", "1001/worker")
    wait_for(lambda: is_stopped(1001, "worker"), 30)
    assert is_running(1001, "web")
    assert as_json(agent, "services", "info", "worker-2")["override"] == "stopped"
    ok(agent, "services", "start", "1001/worker")
    wait_for(lambda: is_running(1001, "worker"), 60)


def test_services_restart_restarts_the_container(agent: AgentProcess, images: ImageSet) -> None:
    deploy(agent, images)
    before = container(1001, "web")
    assert "restarted" in ok(agent, "services", "restart", "web-1")

    def restarted() -> bool:
        now = container(1001, "web")
        return now["State"]["Running"] and now["State"]["StartedAt"] != before["State"]["StartedAt"]

    wait_for(restarted, 60)


def test_services_logs_shows_the_tail(agent: AgentProcess, images: ImageSet) -> None:
    command = ["sh", "-c", "for i in 1 2 3 4 5; do echo line-$i; done; exec sleep 3600"]
    deploy(agent, images, config={"command": command})
    out = wait_for(
        lambda: (
            (o := ok(agent, "services", "logs", "worker-2", "-n", "2")).count("line-") == 2 and o
        ),
        30,
    )
    lines = out.strip().splitlines()
    assert lines[0].endswith("stdout line-4") and lines[1].endswith("stdout line-5"), lines


def test_services_logs_follow_shows_later_lines_and_ends_cleanly_on_ctrl_c(
    agent: AgentProcess, images: ImageSet
) -> None:
    deploy(agent, images)
    proc, reader = follow(agent, "services", "logs", "1001/worker", "-f")
    try:
        # Written to the container's stdout from outside, after the follower connected.
        marker = "printed-later-by-the-container"
        worker_id = container(1001, "worker")["Id"]

        def shows_marker() -> bool:
            dockerkit.docker("exec", worker_id, "sh", "-c", f"echo {marker} > /proc/1/fd/1")
            return reader.has(marker)

        wait_for(shows_marker, 30, 0.5)
    finally:
        returncode, stderr = interrupt(proc, reader)
    assert returncode == 0
    assert "Traceback" not in stderr and "Aborted" not in stderr


# --- agent log, restart, config, factory reset ----------------------------------------


def test_logs_prints_the_requested_number_of_lines(agent: AgentProcess, images: ImageSet) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    agent.wait_status(1001, "main", "Running")  # the agent has logged its steps by now
    lines = ok(agent, "logs", "-n", "5").splitlines()
    assert len(lines) == 5
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert len(ok(agent, "logs", "--lines", "2").splitlines()) == 2


def test_logs_follow_streams_new_agent_lines_until_ctrl_c(
    agent: AgentProcess, images: ImageSet
) -> None:
    proc, reader = follow(agent, "logs", "-f", "-n", "1")
    try:
        # The last old line arrives first: from then on the follower is connected.
        wait_for(lambda: reader.lines, 30)
        agent.set_target(target(app(1001, svc(1, "followme", images.v1))))
        wait_for(lambda: reader.has("followme"), 60)
    finally:
        returncode, stderr = interrupt(proc, reader)
    assert returncode == 0
    assert "Traceback" not in stderr
    assert all(LOG_LINE.match(line) for line in reader.lines), reader.lines


def test_config_set_get_show_and_reset(agent: AgentProcess) -> None:
    # The fixture starts the agent with LOG_LEVEL=debug in its environment.
    assert as_json(agent, "config", "get", "LOG_LEVEL")["source"] == "environment"
    assert "LOG_LEVEL = warn" in ok(agent, "config", "set", "LOG_LEVEL", "warn")
    entry = as_json(agent, "config", "get", "LOG_LEVEL")
    assert (entry["value"], entry["source"]) == ("warn", "override")
    assert re.search(r"Value\s+warn", ok(agent, "config", "get", "log_level"))
    shown = as_json(agent, "config", "show")["config"]
    assert shown["LOG_LEVEL"]["value"] == "warn"
    assert re.search(r"LOG_LEVEL\s+warn\s+override", ok(agent, "config", "show"))

    assert "NOPE" in fails(agent, "config", "set", "NOPE", "1")
    assert "error: " in fails(agent, "config", "get", "NOPE")
    assert "RECONCILIATION_INTERVAL_MS" in fails(
        agent, "config", "set", "RECONCILIATION_INTERVAL_MS", "5"
    )

    assert ok(agent, "config", "get-api").strip() == "(not set)"
    ok(agent, "config", "set-api", "https://cloud.example.com")
    assert ok(agent, "config", "get-api").strip() == "https://cloud.example.com"
    assert "error: " in fails(agent, "config", "set-api", "ftp://nope")

    ok(agent, "config", "reset")
    entry = as_json(agent, "config", "get", "LOG_LEVEL")
    assert (entry["value"], entry["source"]) == ("debug", "environment")
    assert ok(agent, "config", "get-api").strip() == "(not set)"


def test_restart_restarts_the_agent_and_keeps_the_containers(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1))))
    agent.wait_status(1001, "main", "Running")
    before = container(1001, "main")["Id"]
    uuid = as_json(agent, "status")["uuid"]
    assert agent.proc is not None
    pid = agent.proc.pid
    log_size = len(agent.log())

    assert "restarting" in ok(agent, "restart")
    wait_for(lambda: "started" in agent.log()[log_size:], 30)
    wait_for(lambda: iotctl(agent, "status").returncode == 0, 30)
    assert agent.proc.pid == pid and agent.proc.poll() is None
    assert as_json(agent, "status")["uuid"] == uuid
    assert container(1001, "main")["Id"] == before


def test_factory_reset_asks_first_and_then_wipes_the_device(
    agent: AgentProcess, images: ImageSet
) -> None:
    agent.set_target(target(app(1001, svc(1, "main", images.v1, config={"volumes": ["d:/d"]}))))
    agent.wait_status(1001, "main", "Running")
    uuid = as_json(agent, "status")["uuid"]

    declined = iotctl(agent, "factory-reset", stdin="n\n")
    assert declined.returncode == 1
    assert "nothing was changed" in declined.stderr
    no_answer = iotctl(agent, "factory-reset", stdin="")
    assert no_answer.returncode == 1
    assert as_json(agent, "status")["uuid"] == uuid
    assert len(managed_containers(1001)) == 1

    assert "factory reset" in ok(agent, "factory-reset", "--yes")

    def new_identity() -> bool:
        proc = iotctl(agent, "status", "--json")
        return proc.returncode == 0 and json.loads(proc.stdout)["uuid"] != uuid

    wait_for(new_identity, 60, 0.3)
    wait_for(lambda: managed_containers() == [], 30)
    volumes = dockerkit.docker(
        "volume", "ls", "--quiet", "--filter", f"label={dockerkit.MANAGED_LABEL}"
    ).stdout.split()
    assert volumes == []
    assert as_json(agent, "apps", "list") == {}


def test_json_goes_to_stdout_only(agent: AgentProcess) -> None:
    for args in (("status",), ("apps", "list"), ("services", "list"), ("config", "show")):
        proc = iotctl(agent, *args, "--json")
        assert proc.returncode == 0
        assert proc.stderr == ""
        json.loads(proc.stdout)


@pytest.mark.parametrize("args", [("apps",), ("bogus",), ("logs", "-n", "x")])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    proc = subprocess.run([str(IOTCTL), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr


def test_simulation_scenarios_start_and_stop(agent: AgentProcess) -> None:
    rows = {r["name"]: r for r in as_json(agent, "simulation", "list")["scenarios"]}
    assert set(rows) == {"sensor_data", "anomaly_injection", "memory_leak"}
    assert not any(r["running"] for r in rows.values())
    assert "memory_leak started" in ok(agent, "simulation", "start", "memory_leak")
    assert "already running" in ok(agent, "simulation", "start", "memory_leak")

    def leaking() -> bool:
        listed = as_json(agent, "simulation", "list")["scenarios"]
        return any(r["name"] == "memory_leak" and r["leakedMb"] > 0 for r in listed)

    wait_for(leaking, 30, 0.2, "the simulated leak never grew")
    assert "memory_leak" in ok(agent, "simulation", "list")
    assert "memory_leak stopped" in ok(agent, "simulation", "stop", "memory_leak")
    assert "no scenario 'quake'" in fails(agent, "simulation", "start", "quake")
