"""Helpers for integration tests that use the real Docker engine and a local registry.

Everything goes through the `docker` CLI and plain subprocesses, so this module does not
depend on the agent's own Docker client (a bug there must not hide a bug here).
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MANAGED_LABEL = "io.iotistic.managed=true"
BUSYBOX = Path("/bin/busybox")
TEST_REPOSITORY = "iotistic-test/busybox"
INDEX_HTML = "<h1>iotistic test page</h1>\n"

# Stops on SIGTERM at once: `wait` is interrupted by the signal, whereas a foreground
# `sleep` would delay the trap, and PID 1 without a handler ignores SIGTERM entirely.
RUN_FOREVER_CMD = '["sh","-c","trap \'exit 0\' TERM; while true; do sleep 3600 & wait $!; done"]'
HTTP_CMD = '["sh","-c","trap \'exit 0\' TERM; httpd -f -p 80 -h /www & wait $!"]'
CRASH_CMD = '["sh","-c","echo boom; exit 3"]'


class DockerError(RuntimeError):
    """A docker CLI command failed; carries its output for the assertion message."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        super().__init__(
            f"`{' '.join(args)}` exited {returncode}\nstdout: {stdout.strip()}\n"
            f"stderr: {stderr.strip()}"
        )
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def docker(
    *args: str, check: bool = True, timeout: float = 120.0, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS...` and return the completed process (raises DockerError on failure)."""
    cmd = ["docker", *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, input=input_text, check=False
    )
    if check and proc.returncode != 0:
        raise DockerError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def docker_available() -> str | None:
    """Return None when the engine answers, else the reason it does not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        proc = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker info` timed out"
    if proc.returncode != 0:
        return f"`docker info` failed: {proc.stderr.strip()}"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET url and return (status, body); HTTP error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


# --- registry ---------------------------------------------------------------------------


@dataclass
class LocalRegistry:
    """A running Debian `docker-registry` on 127.0.0.1 with throwaway storage."""

    host: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def _registry_ready(host: str) -> bool:
    try:
        status, _ = http_get(f"http://{host}/v2/", timeout=1.0)
    except OSError:
        return False
    return status == 200


def start_registry(
    workdir: Path, binary: str = "/usr/bin/docker-registry", timeout: float = 20.0
) -> LocalRegistry:
    """Start a registry on a free port and wait until `GET /v2/` answers 200."""
    if not Path(binary).exists():
        raise RuntimeError(f"{binary} not found (Debian package docker-registry)")
    last_error = ""
    # The free port can be taken between probing and binding: retry with another one.
    for attempt in range(3):
        port = free_port()
        run_dir = workdir / f"registry-{attempt}"
        storage = run_dir / "storage"
        storage.mkdir(parents=True)
        config = run_dir / "config.yml"
        config.write_text(REGISTRY_CONFIG.format(storage=storage, port=port))
        log_path = run_dir / "registry.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        registry = LocalRegistry(f"127.0.0.1:{port}", process, run_dir, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _registry_ready(registry.host):
                return registry
            time.sleep(0.05)
        registry.stop()
        last_error = registry.log_tail()
    raise RuntimeError(f"docker-registry did not become ready; last log:\n{last_error}")


# --- test images ------------------------------------------------------------------------


@dataclass
class ImageSet:
    """Full references of the test images pushed to the local registry."""

    registry: LocalRegistry
    repository: str
    v1: str
    v2: str
    http: str
    crash: str
    missing: str
    index_html: str = INDEX_HTML
    pushed: list[str] = field(default_factory=list)


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def busybox_applets(busybox: Path = BUSYBOX) -> list[str]:
    out = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout
    return [name for name in out.split() if name and "/" not in name and name != "busybox"]


def build_rootfs_tar(dest: Path, busybox: Path = BUSYBOX) -> Path:
    """Write a minimal busybox root filesystem as a tar file, without any download.

    Entries are written directly (owner root, fixed mtime) rather than copied from a
    directory, so modes and ownership are exact without needing root or chroot.
    """
    if not busybox.is_file():
        raise RuntimeError(f"{busybox} not found (Debian package busybox-static)")
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "etc", "data", "www", "root", "var", "dev", "proc", "sys"):
            _add_dir(tar, name)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in busybox_applets(busybox):
            _add_symlink(tar, f"bin/{applet}", "busybox")
        _add_file(
            tar,
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
        _add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        _add_file(tar, "www/index.html", INDEX_HTML.encode())
    return dest


def variant_tar(base: Path, dest: Path, version: str) -> Path:
    """Copy the base tar and append /etc/image-version, so each tag has distinct content."""
    shutil.copyfile(base, dest)
    with tarfile.open(dest, "a", format=tarfile.PAX_FORMAT) as tar:
        _add_file(tar, "etc/image-version", f"{version}\n".encode())
    return dest


def import_image(tar_path: Path, ref: str, cmd_json: str, extra_changes: Sequence[str] = ()) -> str:
    """`docker import` the tar as ref with the given CMD; returns the image id."""
    changes = ["ENV PATH=/bin", "WORKDIR /", f"CMD {cmd_json}", *extra_changes]
    args = ["import"]
    for change in changes:
        args += ["--change", change]
    args += [str(tar_path), ref]
    return docker(*args).stdout.strip()


def push_image(ref: str) -> None:
    docker("push", ref, timeout=300)


def remove_local_image(ref: str) -> None:
    """Remove a local image tag if present (no error when it is already gone)."""
    proc = docker("rmi", "--force", ref, check=False)
    if proc.returncode != 0 and "No such image" not in proc.stderr:
        raise DockerError(
            ["docker", "rmi", "--force", ref], proc.returncode, proc.stdout, proc.stderr
        )


def image_present(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def build_test_images(registry: LocalRegistry, workdir: Path) -> ImageSet:
    """Build, push and then untag the test images so that tests do a real pull."""
    repo = f"{registry.host}/{TEST_REPOSITORY}"
    images = ImageSet(
        registry=registry,
        repository=repo,
        v1=f"{repo}:v1",
        v2=f"{repo}:v2",
        http=f"{repo}:http",
        crash=f"{repo}:crash",
        missing=f"{repo}:does-not-exist",
    )
    workdir.mkdir(parents=True, exist_ok=True)
    base = build_rootfs_tar(workdir / "rootfs.tar")
    specs: list[tuple[str, str, str, list[str]]] = [
        (images.v1, "v1", RUN_FOREVER_CMD, []),
        (images.v2, "v2", RUN_FOREVER_CMD, []),
        (images.http, "http", HTTP_CMD, ["EXPOSE 80"]),
        (images.crash, "crash", CRASH_CMD, []),
    ]
    for ref, version, cmd, extra in specs:
        tar_path = variant_tar(base, workdir / f"rootfs-{version}.tar", version)
        import_image(tar_path, ref, cmd, extra)
        push_image(ref)
        images.pushed.append(ref)
    for ref in images.pushed:
        remove_local_image(ref)
    return images


@contextmanager
def local_test_images(workdir: Path) -> Iterator[ImageSet]:
    """A registry with the test images for a benchmark, removed again afterwards."""
    registry = start_registry(workdir / "registry")
    try:
        yield build_test_images(registry, workdir / "images")
    finally:
        remove_repository_images(f"{registry.host}/{TEST_REPOSITORY}")
        registry.stop()


def remove_repository_images(repository: str) -> None:
    """Remove every local image of a repository (pulled copies of the test images)."""
    refs = docker(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={repository}:*"
    ).stdout.split()
    if refs:
        docker("rmi", "--force", *refs, check=False)


# --- cleanup ----------------------------------------------------------------------------


def remove_managed_objects(label: str = MANAGED_LABEL) -> None:
    """Force-remove every container, network and volume carrying the label."""
    containers = docker("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
    if containers:
        docker("rm", "--force", "--volumes", *containers, check=False)
    networks = docker("network", "ls", "--quiet", "--filter", f"label={label}").stdout.split()
    if networks:
        docker("network", "rm", *networks, check=False)
    volumes = docker("volume", "ls", "--quiet", "--filter", f"label={label}").stdout.split()
    if volumes:
        docker("volume", "rm", "--force", *volumes, check=False)
