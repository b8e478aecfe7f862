"""The agent's own log: JSON lines and text, components, context, exceptions, runtime level
and format, redaction of secrets, rotated files, the ring seeded from the previous run."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from iotistic_agent.device_api.log_routes import encode_agent_entry
from iotistic_agent.logs.components import LogComponents, component_for
from iotistic_agent.logs.files import log_file_path
from iotistic_agent.logs.formatting import JsonLinesFormatter, TextFormatter, resolve_format
from iotistic_agent.logs.setup import LoggingSetup
from iotistic_agent.runtime_config import DESCRIPTIONS
from iotistic_agent.settings import AgentSettings

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def settings(tmp_path: Path, **values: Any) -> AgentSettings:
    return AgentSettings(DATABASE_PATH=tmp_path / "device.sqlite", **values)


@pytest.fixture
def make_setup(tmp_path: Path) -> Iterator[Any]:
    """A LoggingSetup on the `iotistic` logger (not the root: pytest's capture stays)."""
    made: list[LoggingSetup] = []
    top = logging.getLogger("iotistic")

    def make(stream: io.StringIO | None = None, **values: Any) -> LoggingSetup:
        setup = LoggingSetup(
            settings(tmp_path, **values), tmp_path, stream=stream or io.StringIO(), root=top
        )
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.close()
    top.setLevel(logging.NOTSET)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


# --- shape, components, context, exceptions ---------------------------------------------


def test_a_json_line_has_the_spec_fields(make_setup: Any) -> None:
    out = io.StringIO()
    make_setup(out, LOG_FORMAT="json")
    logging.getLogger("iotistic.mqtt").warning("connected to %s", "broker")
    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert TIMESTAMP.fullmatch(entry.pop("timestamp"))
    assert entry == {"level": "warn", "component": "mqtt", "message": "connected to broker"}


@pytest.mark.parametrize(
    ("logger", "component"),
    [
        ("iotistic.agent", "agent"),
        ("iotistic.reconciler", "stateReconciler"),
        ("iotistic_agent.orchestrator.docker", "containerManager"),
        ("iotistic.cloud", "cloudSync"),
        ("iotistic.cloud.poll", "cloudSync"),
        ("iotistic.cloud.report", "cloudSync"),
        ("iotistic.mqtt.paho", "mqtt"),
        ("iotistic.provisioning", "provisioning"),
        ("iotistic.anomaly", "anomalyDetection"),
        ("iotistic_agent.anomaly.service", "anomalyDetection"),
        ("iotistic_agent.anomaly.ml", "anomalyDetection"),
        ("iotistic.device_api", "deviceApi"),
        ("iotistic.device_api.logs", "deviceApi"),
        ("aiohttp.access", "deviceApi"),
        ("iotistic_agent.telemetry.collector", "metrics"),
        ("iotistic.simulation", "simulation"),
        ("iotistic_agent.store.db", "database"),
        ("iotistic.logs", "logs"),
        ("asyncio", "asyncio"),
        ("urllib3.connectionpool", "connectionpool"),
        ("root", "agent"),
        ("", "agent"),
    ],
)
def test_loggers_map_to_the_spec_components(logger: str, component: str) -> None:
    assert component_for(logger) == component


def test_every_agent_logger_has_a_spec_component() -> None:
    source = Path(__file__).parents[2] / "packages" / "agent" / "src" / "iotistic_agent"
    names = set()
    for path in source.rglob("*.py"):
        text = path.read_text()
        names.update(re.findall(r'getLogger\("([^"]+)"\)', text))
        if "getLogger(__name__)" in text:
            module = path.relative_to(source.parent).with_suffix("").as_posix()
            names.add(module.replace("/", "."))
    assert names
    spec = {c.value for c in LogComponents}
    assert {name: component_for(name) for name in names if component_for(name) not in spec} == {}


def test_context_and_an_explicit_component(make_setup: Any) -> None:
    out = io.StringIO()
    make_setup(out, LOG_FORMAT="json")
    log = logging.getLogger("iotistic.agent")
    log.info("pass done", extra={"context": {"apps": 2, "path": Path("/x")}})
    log.info("polled", extra={"component": LogComponents.cloudSync})
    first, second = json_lines(out)
    assert first["context"] == {"apps": 2, "path": "/x"}
    assert second["component"] == "cloudSync" and "context" not in second


def test_an_exception_gives_error_and_stack(make_setup: Any) -> None:
    out = io.StringIO()
    setup = make_setup(out, LOG_FORMAT="json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("iotistic.reconciler").exception("pass failed")
    [entry] = json_lines(out)
    assert entry["level"] == "error" and entry["message"] == "pass failed"
    assert entry["error"] == "ValueError: boom"
    assert "Traceback" in entry["stack"] and 'raise ValueError("boom")' in entry["stack"]
    assert setup.ring.tail(1)[0]["error"] == "ValueError: boom"


def test_text_is_one_line_per_record_with_context_then_the_stack() -> None:
    record = logging.LogRecord("iotistic.mqtt", logging.INFO, __file__, 1, "up %s", ("now",), None)
    record.context = {"broker": "mqtt://b:1883", "note": "two words"}
    text = TextFormatter().format(record)
    assert re.fullmatch(r"\S+Z INFO  mqtt: up now broker=mqtt://b:1883 note=\"two words\"", text), (
        text
    )
    line = JsonLinesFormatter().format(record)
    assert "\n" not in line and json.loads(line)["context"]["note"] == "two words"


# --- format selection and runtime changes ------------------------------------------------


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("auto", None) == "json"
    assert resolve_format("json", Terminal()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


def test_stderr_format_follows_the_terminal_and_log_format(make_setup: Any) -> None:
    tty, pipe, forced = Terminal(), io.StringIO(), Terminal()
    for stream, wanted in ((tty, "auto"), (pipe, "auto"), (forced, "json")):
        make_setup(stream, LOG_FORMAT=wanted)  # replaces the previous setup's handlers
        logging.getLogger("iotistic.agent").info("hello")
    assert not tty.getvalue().startswith("{") and "INFO  agent: hello" in tty.getvalue()
    assert json.loads(pipe.getvalue())["message"] == "hello"
    assert json.loads(forced.getvalue())["message"] == "hello"


def test_level_and_format_change_at_runtime(make_setup: Any, tmp_path: Path) -> None:
    out = io.StringIO()
    setup = make_setup(out, LOG_FORMAT="json", LOG_LEVEL="warn")
    log = logging.getLogger("iotistic.agent")
    log.info("hidden")
    setup.apply(settings(tmp_path, LOG_LEVEL="debug", LOG_FORMAT="text"))
    log.debug("shown as text")
    setup.apply(settings(tmp_path, LOG_LEVEL="error", LOG_FORMAT="json"))
    log.warning("hidden again")
    log.error("shown as json")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "DEBUG agent: shown as text" in lines[0]
    assert json.loads(lines[1])["message"] == "shown as json"


def test_log_settings_are_validated_and_runtime_keys() -> None:
    with pytest.raises(ValueError, match="must be auto, json or text"):
        AgentSettings.from_env({"LOG_FORMAT": "xml"})
    assert AgentSettings.from_env({"LOG_FORMAT": " JSON "}).LOG_FORMAT == "json"
    with pytest.raises(ValueError, match="LOG_FILE_COUNT"):
        AgentSettings.from_env({"LOG_FILE_COUNT": "0"})
    defaults = AgentSettings()
    assert (defaults.LOG_FORMAT, defaults.LOG_FILE_ENABLED) == ("auto", True)
    assert (defaults.LOG_FILE_MAX_BYTES, defaults.LOG_FILE_COUNT) == (5 * 1024 * 1024, 3)
    for key in ("LOG_LEVEL", "LOG_FORMAT", "LOG_FILE_ENABLED", "LOG_FILE_MAX_BYTES"):
        assert key in DESCRIPTIONS


# --- redaction ---------------------------------------------------------------------------

TOKEN = "Xy9_-" + "a" * 38  # the cloud's 43 URL-safe base64 characters
SECRETS = [f"ipk_{TOKEN}", f"idk_{TOKEN}", f"iat_{TOKEN}", "s3cr3t-Pa55", "eyJhbGciOi.abc.def"]


@pytest.mark.parametrize(
    ("template", "secret"),
    [
        ("provisioning with %s", f"ipk_{TOKEN}"),
        ("device key %s stored", f"idk_{TOKEN}"),
        ("admin %s", f"iat_{TOKEN}"),
        ("headers: Authorization: Bearer %s", "eyJhbGciOi.abc.def"),
        ("sent bearer %s", "eyJhbGciOi.abc.def"),
        ("connect password=%s host=b", "s3cr3t-Pa55"),
        ('body {"password": "%s", "user": "u"}', "s3cr3t-Pa55"),
        ("creds {'mqttPassword': '%s'}", "s3cr3t-Pa55"),
        ("api_key: %s", "s3cr3t-Pa55"),
        ("broker mqtts://device-1:%s@broker:8883", "s3cr3t-Pa55"),
    ],
)
def test_secrets_in_messages_are_redacted_everywhere(
    make_setup: Any, tmp_path: Path, template: str, secret: str
) -> None:
    out = io.StringIO()
    setup = make_setup(out, LOG_FORMAT="json")
    logging.getLogger("iotistic.provisioning").info(template, secret)
    setup.file.flush()
    written = out.getvalue() + log_file_path(tmp_path).read_text() + json.dumps(setup.ring.tail(5))
    assert secret not in written
    assert "[redacted]" in json_lines(out)[0]["message"]


def test_secrets_in_context_and_exceptions_are_redacted(make_setup: Any) -> None:
    out = io.StringIO()
    setup = make_setup(out, LOG_FORMAT="json")
    context = {
        "password": "plain-value",
        "nested": {"apiKey": "k-value", "url": f"https://c/?k=ipk_{TOKEN}"},
        "headers": [f"Authorization: Bearer {TOKEN}"],
        "user": "operator",
    }
    try:
        raise RuntimeError(f"refused idk_{TOKEN}")
    except RuntimeError:
        logging.getLogger("iotistic.mqtt").exception("failed", extra={"context": context})
    text = out.getvalue() + json.dumps(setup.ring.tail(1))
    for secret in ("plain-value", "k-value", TOKEN):
        assert secret not in text
    [entry] = json_lines(out)
    assert entry["context"]["password"] == "[redacted]"
    assert entry["context"]["nested"]["apiKey"] == "[redacted]"
    assert entry["context"]["user"] == "operator"
    assert entry["error"] == "RuntimeError: refused idk_[redacted]"


def test_short_key_prefixes_stay_readable(make_setup: Any) -> None:
    out = io.StringIO()
    make_setup(out, LOG_FORMAT="json")
    logging.getLogger("iotistic.provisioning").info("key ipk_abcd1234 revoked")
    assert json_lines(out)[0]["message"] == "key ipk_abcd1234 revoked"


def test_handlers_added_later_see_redacted_records(make_setup: Any) -> None:
    setup = make_setup()
    shipped = io.StringIO()
    handler = logging.StreamHandler(shipped)
    setup.add_handler(handler)
    logging.getLogger("iotistic.cloud").warning("token=%s", TOKEN)
    assert TOKEN not in shipped.getvalue() and "token=[redacted]" in shipped.getvalue()


# --- files and the ring ------------------------------------------------------------------


def test_the_file_rotates_at_the_size_limit_and_keeps_n_backups(
    make_setup: Any, tmp_path: Path
) -> None:
    setup = make_setup(LOG_FILE_MAX_BYTES=4096, LOG_FILE_COUNT=2)
    log = logging.getLogger("iotistic.agent")
    for i in range(400):
        log.info("line %d %s", i, "x" * 40)
    setup.file.flush()
    folder = log_file_path(tmp_path).parent
    assert sorted(p.name for p in folder.iterdir()) == ["agent.log", "agent.log.1", "agent.log.2"]
    for path in folder.iterdir():
        assert path.stat().st_size <= 4096
        for line in path.read_text().splitlines():
            assert json.loads(line)["component"] == "agent"
    last = json.loads(log_file_path(tmp_path).read_text().splitlines()[-1])
    assert last["message"].startswith("line 399 ")


def test_the_file_can_be_switched_off_and_on(make_setup: Any, tmp_path: Path) -> None:
    setup = make_setup(LOG_FILE_ENABLED=False)
    assert setup.file is None and not log_file_path(tmp_path).exists()
    setup.apply(settings(tmp_path, LOG_FILE_ENABLED=True, LOG_FILE_MAX_BYTES=8192))
    assert setup.file is not None and setup.file.maxBytes == 8192
    logging.getLogger("iotistic.agent").info("now in the file")
    setup.file.flush()
    assert "now in the file" in log_file_path(tmp_path).read_text()


def test_the_ring_starts_with_the_previous_runs_tail(make_setup: Any, tmp_path: Path) -> None:
    path = log_file_path(tmp_path)
    path.parent.mkdir(parents=True, mode=0o700)  # already private: no "tightened" record
    backup = [{"timestamp": "t", "level": "info", "component": "agent", "message": "old"}]
    path.with_name("agent.log.1").write_text("".join(json.dumps(e) + "\n" for e in backup))
    current = [
        {"timestamp": "t", "level": "info", "component": "mqtt", "message": f"m{i}"}
        for i in range(3)
    ]
    torn = '{"timestamp": "t", "level": "info", "mes'
    path.write_text("".join(json.dumps(e) + "\n" for e in current) + "not json\n" + torn)
    setup = make_setup()
    logging.getLogger("iotistic.agent").info("new run")
    messages = [e["message"] for e in setup.ring.tail(10)]
    assert messages == ["old", "m0", "m1", "m2", "new run"]
    assert [e["message"] for e in setup.ring.tail(2)] == ["m2", "new run"]


def test_the_ring_seed_is_bounded(tmp_path: Path) -> None:
    from iotistic_agent.logs.files import read_tail

    path = log_file_path(tmp_path)
    path.parent.mkdir(parents=True)
    entry = {"timestamp": "t", "level": "info", "component": "agent"}
    path.write_text("".join(json.dumps({**entry, "message": f"m{i}"}) + "\n" for i in range(500)))
    found = read_tail(path, 1000, max_bytes=2000)
    assert 0 < len(found) < 500 and found[-1]["message"] == "m499"
    assert [e["message"] for e in read_tail(path, 2)] == ["m498", "m499"]
    assert read_tail(tmp_path / "missing.log", 5) == []


def test_the_log_route_encodes_context_and_errors() -> None:
    plain = {"timestamp": "t", "level": "info", "component": "agent", "message": "m"}
    assert json.loads(encode_agent_entry(plain)) == plain
    rich = {**plain, "context": {"apps": 2}, "error": "ValueError: x", "stack": "Traceback"}
    assert json.loads(encode_agent_entry(rich)) == rich
