"""Cloud logs: ingestion (uploads of 1000 NDJSON records, plain and gzip), or with --query the
admin log queries on a full table.

Run (after scripts/bootstrap.sh, as root for PostgreSQL):
    .venv/bin/python bench/bench_cloud_logs.py [--backend sqlite|postgresql|both]
        [--devices 8] [--clients 4] [--seconds 5] [--records 1000]
    .venv/bin/python bench/bench_cloud_logs.py --query [--backend ...] [--devices 20]
        [--per-device 100000] [--seconds 3]

The real `iotistic-cloud serve` (one process) is pinned to CPU 0; this load generator (and
PostgreSQL, when used) to CPU 1, as in bench_cloud.py, whose load loop this reuses. For each
backend: `GET /health` (baseline in the same run), then `POST /api/v1/device/{uuid}/logs`
with --records new records per upload (a mix of container lines and agent records with
context, about 240 bytes a line), plain and gzip, from --clients concurrent keep-alive
clients spread over --devices devices. Reported: uploads/s, records/s, MB/s as sent and as
NDJSON, p50/p99 latency, and the cloud's RSS after each measurement (and its peak).

--query (bench_cloud_log_queries.py): fills the table through the upload API, then times
GET /api/admin/v1/devices/{uuid}/logs for the usual operator queries, one client at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cloud import Result, load  # noqa: E402

from tests.cloud.device_kit import SimDevice, provision  # noqa: E402
from tests.support.cloud_process import CloudProcess  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402

PATHS = ("/", "/api/orders", "/api/orders/42", "/static/app.js", "/health")


def line(seq: int) -> str:
    """One record: three container lines (nginx style) to one agent record."""
    stamp = f"2026-11-25T12:{seq // 60_000_000 % 60:02d}:{seq // 1_000_000 % 60:02d}."
    stamp += f"{seq % 1_000_000:06d}123Z"
    if seq % 4:
        path = PATHS[seq % len(PATHS)]
        record = {
            "seq": seq, "timestamp": stamp, "level": "info", "source": "container",
            "app": "shop", "service": "web", "stream": "stdout",
            "message": f'10.0.3.{seq % 250} - - "GET {path} HTTP/1.1" 200 {seq % 9000} '
            f'"-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.0{seq % 90:02d}',
        }  # fmt: skip
    else:
        record = {
            "seq": seq, "timestamp": stamp, "level": "warn", "source": "agent",
            "component": "cloudSync", "message": "report failed, retrying",
            "context": {"attempt": seq % 5, "status": 503, "delayS": 2.5},
        }  # fmt: skip
    return json.dumps(record, separators=(",", ":"))


class Uploads:
    """Bodies with new sequence numbers for each upload, per device."""

    def __init__(
        self, fleet: list[SimDevice], records: int, compress: bool, next_seq: list[int]
    ) -> None:
        self.fleet = fleet
        self.records = records
        self.compress = compress
        # Shared between measurements: the devices' sequences go on.
        self.next_seq = next_seq
        self.uploads = 0
        self.sent_bytes = 0
        self.ndjson_bytes = 0

    def body(self, n: int) -> tuple[SimDevice, bytes]:
        index = n % len(self.fleet)
        first = self.next_seq[index]
        self.next_seq[index] += self.records
        self.uploads += 1
        raw = ("\n".join(line(s) for s in range(first, first + self.records)) + "\n").encode()
        sent = gzip.compress(raw, compresslevel=6) if self.compress else raw
        self.sent_bytes += len(sent)
        self.ndjson_bytes += len(raw)
        return self.fleet[index], sent


def rss_mb(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak (MB)."""
    fields = dict(row.split(":", 1) for row in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def provision_fleet(cloud: CloudProcess, count: int) -> list[SimDevice]:
    async with httpx.AsyncClient(base_url=cloud.url, timeout=30) as client:
        created = await client.post(
            "/api/admin/v1/keys", json={"maxDevices": count}, headers=cloud.admin_headers
        )
        key = created.json()["key"]
        return [await provision(client, key, name=f"logs-{i}") for i in range(count)]


async def measure(cloud: CloudProcess, args: argparse.Namespace, pid: int) -> None:
    fleet = await provision_fleet(cloud, args.devices)
    url = cloud.url

    async def health(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"{url}/health") as response:
            await response.read()
            return response.status

    baseline = await load("GET /health (baseline)", health, args.clients, args.seconds)
    print(baseline.line(None))
    print(f"  cloud RSS {rss_mb(pid)[0]:.0f} MB")
    next_seq = [1] * len(fleet)
    for compress in (False, True):
        uploads = Uploads(fleet, args.records, compress, next_seq)
        headers = {"Content-Type": "application/x-ndjson"}
        if compress:
            headers["Content-Encoding"] = "gzip"

        async def upload(
            session: aiohttp.ClientSession,
            n: int,
            u: Uploads = uploads,
            h: dict[str, str] = headers,
        ) -> int:
            device, body = u.body(n)
            path = f"{url}/api/v1/device/{device.uuid}/logs"
            async with session.post(path, data=body, headers={**h, **device.auth}) as response:
                answer = await response.json()
                assert answer["accepted"] == u.records, answer
                return response.status

        name = f"upload {args.records}, {'gzip' if compress else 'plain'}"
        result = await load(name, upload, args.clients, args.seconds)
        report(result, uploads, args.records, baseline)
        now, peak = rss_mb(pid)
        print(f"  cloud RSS {now:.0f} MB (peak {peak:.0f} MB)")


def report(result: Result, uploads: Uploads, records: int, baseline: Result) -> None:
    # The byte counters include the warm-up; the ratio per upload is the same.
    sent_per = uploads.sent_bytes / uploads.uploads
    raw_per = uploads.ndjson_bytes / uploads.uploads
    print(result.line(baseline))
    print(
        f"  {result.rps * records:,.0f} records/s, {result.rps * sent_per / 1e6:.1f} MB/s as sent, "
        f"{result.rps * raw_per / 1e6:.1f} MB/s NDJSON ({sent_per / 1024:.0f} KiB per upload)"
    )


def run_backend(name: str, args: argparse.Namespace, work: Path) -> None:
    postgres = None
    database_url = None
    if name == "postgresql":
        postgres = PostgresServer().start()
        database_url = postgres.create_database("bench_logs")
        assert postgres.proc is not None
        os.sched_setaffinity(postgres.proc.pid, {1})
    cloud = CloudProcess(work / name, database_url=database_url).start()
    assert cloud.proc is not None
    os.sched_setaffinity(cloud.proc.pid, {0})
    print(f"\n== {name}: {args.devices} devices, {args.clients} clients, cloud on one core ==")
    try:
        asyncio.run(measure(cloud, args, cloud.proc.pid))
    finally:
        cloud.stop()
        if postgres is not None:
            postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--devices", type=int, help="8, or 20 with --query")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, help="per measurement: 5, or 3 with --query")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--query", action="store_true", help="time the admin log queries")
    parser.add_argument("--per-device", type=int, default=100_000, help="with --query")
    args = parser.parse_args()
    args.devices = args.devices or (20 if args.query else 8)
    args.seconds = args.seconds or (3.0 if args.query else 5.0)
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two CPUs: one for the cloud, one for the load")
    os.sched_setaffinity(0, {1})
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory(prefix="bench-cloud-logs-") as work:
        for backend in backends:
            if args.query:
                from bench_cloud_log_queries import run_queries

                run_queries(backend, args, Path(work))
            else:
                run_backend(backend, args, Path(work))


if __name__ == "__main__":
    main()
