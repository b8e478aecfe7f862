"""Fixtures for integration tests: a real Docker engine, a local registry, test images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import dockerkit
from tests.integration.agent_process import AgentProcess
from tests.integration.dockerkit import ImageSet, LocalRegistry

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Conftest hooks see every collected item, so mark only the ones under this folder.
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Ensure the engine answers. Without it these tests fail: they prove nothing skipped."""
    reason = dockerkit.docker_available()
    if reason is not None:
        pytest.fail(f"Docker engine unavailable: {reason} (scripts/bootstrap.sh starts it as root)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Debian's docker-registry on 127.0.0.1:<free port>, with throwaway storage."""
    reg = dockerkit.start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def images(
    docker_engine: None, registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageSet]:
    """Test images built from the host's static busybox, pushed, then untagged locally."""
    started = time.monotonic()
    image_set = dockerkit.build_test_images(registry, tmp_path_factory.mktemp("images"))
    print(
        f"\n[images fixture] built and pushed {len(image_set.pushed)} tags in "
        f"{time.monotonic() - started:.2f}s"
    )
    try:
        yield image_set
    finally:
        # Pulled copies would otherwise pile up: every session uses a new registry port.
        dockerkit.remove_repository_images(image_set.repository)


@pytest.fixture
def docker_clean(docker_engine: None) -> Iterator[None]:
    """Remove containers, networks and volumes labelled io.iotistic.managed=true."""
    dockerkit.remove_managed_objects()
    yield
    dockerkit.remove_managed_objects()


@pytest.fixture
def agent(tmp_path: Path, images: ImageSet, docker_clean: None) -> Iterator[AgentProcess]:
    """The real agent process on a fresh data directory, killed after the test."""
    proc = AgentProcess(tmp_path / "agent").start()
    yield proc
    proc.stop()
