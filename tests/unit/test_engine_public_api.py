"""The Docker adapter reaches the engine only through public client calls: aiodocker's
public methods, or aiohttp's on aiodocker's public session (engine/docker_http.py). A private
helper of aiodocker (`_do_query` and its kin) may change in any release (issue 12, item 23)."""

from __future__ import annotations

import ast
from importlib import resources

ENGINE_PACKAGE = "iotistic_agent.engine"
AIODOCKER_PRIVATE = {
    "_do_query",
    "_query",
    "_query_json",
    "_query_chunked_post",
    "_websocket",
    "_check_version",
    "_canonicalize_url",
    "_resolve_long_running_timeout",
    "_logs_stream",
    "_logs_list",
}


def test_no_module_of_the_engine_package_calls_a_private_aiodocker_helper() -> None:
    found = []
    for entry in resources.files(ENGINE_PACKAGE).iterdir():
        if not entry.name.endswith(".py"):
            continue
        tree = ast.parse(entry.read_text(encoding="utf-8"))
        found += [
            f"{entry.name}:{node.lineno} .{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in AIODOCKER_PRIVATE
        ]
    assert found == []
