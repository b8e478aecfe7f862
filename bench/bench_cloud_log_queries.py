"""The query side of the cloud's device logs, on a full table (bench_cloud_logs.py --query).

For each backend: the real `iotistic-cloud serve` pinned to CPU 0 (this process and
PostgreSQL on CPU 1); --devices devices each get --per-device records through the upload API
(gzip, 1000 a request, 4 clients), stamped over the last 24 hours: an nginx-style web
service (55 %), an API service (20 %, 1 % errors), a worker (10 %), a database container
(5 %, one "deadlock" line in 10,000) and agent records (10 %). PostgreSQL gets an ANALYZE
after the fill, as autovacuum would give it; SQLite has no statistics (the cloud never runs
ANALYZE). Then, one client, --seconds per query after a 1 s warm-up, rotating over the
devices: GET /health (baseline) and GET /api/admin/v1/devices/{uuid}/logs for the usual
operator queries. Reported: p50/p99 latency. Then each query's plan (SQLite `EXPLAIN QUERY
PLAN`, PostgreSQL `EXPLAIN ANALYZE`) of the exact statements LogService.query runs, and the
cost of one retention prune after an upload to a device at its cap (in this process, through
LogService.store).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from bench_cloud import Result, load
from bench_cloud_logs import provision_fleet
from iotistic_cloud.db.engine import Database
from iotistic_cloud.services.log_input import parse_upload
from iotistic_cloud.services.log_query import parse_filter
from iotistic_cloud.services.logs import LogService, Uploader
from iotistic_cloud.settings import database_url
from sqlalchemy import event, text

from tests.cloud.device_kit import SimDevice
from tests.support.cloud_process import CloudProcess
from tests.support.postgres import PostgresServer

BATCH = 1000
FILL_CLIENTS = 4
SPAN = timedelta(hours=24)
PATHS = ("/", "/api/orders", "/api/orders/42", "/static/app.js", "/health", "/cart")


def record(seq: int, stamp: datetime) -> dict[str, Any]:
    """Record ``seq`` of a device: which kind follows from seq % 100 (see the docstring)."""
    kind = seq % 100
    base: dict[str, Any] = {"seq": seq, "timestamp": stamp.isoformat().replace("+00:00", "Z")}
    if kind < 55:
        path = PATHS[seq % len(PATHS)]
        message = (
            f'10.0.{seq % 7}.{seq % 250} - - [{stamp:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} '
            f'HTTP/1.1" {404 if seq % 53 == 0 else 200} {seq % 9000} "-" '
            f'"Mozilla/5.0 (X11; Linux x86_64)" rt=0.0{seq % 90:02d}'
        )
        return base | _container("web", "info", "stdout", message)
    if kind < 75:
        if kind == 74:
            message = (
                f"upstream timed out (110: Connection timed out) while reading response "
                f"header, request id {seq:x}"
            )
            return base | _container("api", "error", "stderr", message)
        message = f"order {seq % 100_000} updated by user {seq % 977} in {seq % 40 + 2} ms"
        return base | _container("api", "debug" if kind % 4 == 0 else "info", "stdout", message)
    if kind < 85:
        message = f"job {seq:x} (thumbnails) done in {seq % 3000 / 1000:.3f}s, queue depth 3"
        return base | _container("worker", "warn" if kind == 84 else "info", "stdout", message)
    if kind < 90:
        if seq % 10_000 == 5588:
            message = "ERROR:  deadlock detected; Process 812 waits for ShareLock on transaction"
            return base | _container("db", "error", "stderr", message)
        message = f"checkpoint complete: wrote {seq % 500} buffers ({seq % 7}.{seq % 10}%)"
        return base | _container("db", "info", "stderr", message)
    agent: dict[str, Any] = {"source": "agent", "component": "cloudSync"}
    if kind < 97:
        return base | agent | {"level": "info", "message": "report sent", "context": {"n": kind}}
    context = {"attempt": seq % 5, "status": 503, "delayS": 2.5}
    warn = {"level": "warn", "message": "report failed, retrying", "context": context}
    return base | agent | warn


def _container(service: str, level: str, stream: str, message: str) -> dict[str, Any]:
    return {
        "source": "container", "app": "shop", "service": service, "level": level,
        "stream": stream, "message": message,
    }  # fmt: skip


def batch_body(first: int, per_device: int, start: datetime, compress: bool = True) -> bytes:
    """Records first .. first+BATCH-1; the device's records are spread over SPAN from start."""
    step = SPAN / per_device
    lines = (
        json.dumps(record(seq, start + step * seq), separators=(",", ":"))
        for seq in range(first, first + BATCH)
    )
    raw = ("\n".join(lines) + "\n").encode()
    return gzip.compress(raw, compresslevel=1) if compress else raw


async def fill(url: str, fleet: list[SimDevice], per_device: int, start: datetime) -> None:
    jobs = [(d, first) for first in range(1, per_device + 1, BATCH) for d in fleet]
    jobs.reverse()
    headers = {"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while jobs:
                device, first = jobs.pop()
                body = batch_body(first, per_device, start)
                path = f"{url}/api/v1/device/{device.uuid}/logs"
                async with session.post(
                    path, data=body, headers={**headers, **device.auth}
                ) as response:
                    answer = await response.json()
                    assert answer["accepted"] == BATCH, answer

    await asyncio.gather(*(client() for _ in range(FILL_CLIENTS)))


@dataclass(frozen=True)
class Query:
    name: str
    params: dict[str, str]
    # A page number -> extra parameters (after_seq) for the n-th request.
    paging: Callable[[int, int], dict[str, str]] | None = None


def queries(per_device: int) -> list[Query]:
    pages = max(1, per_device // 1000)
    return [
        Query("newest 100 (CLI default)", {"limit": "100"}),
        Query("newest 1000 (API default)", {}),
        Query("level=error, 100", {"level": "error", "limit": "100"}),
        Query("service=db, 100", {"service": "db", "limit": "100"}),
        Query("q=timed out, 100", {"q": "timed out", "limit": "100"}),
        Query("q=deadlock (rare), 100", {"q": "deadlock", "limit": "100"}),
        Query("since=1h, 1000", {"since": "1h"}),
        Query("since=1h level=warn, 100", {"since": "1h", "level": "warn", "limit": "100"}),
        Query(
            "after_seq paging, 1000",
            {},
            lambda n, _top: {"after_seq": str(n // 7 % pages * 1000)},
        ),
        Query("follow poll (nothing new)", {}, lambda _n, top: {"after_seq": str(top)}),
    ]


async def time_queries(
    cloud: CloudProcess, fleet: list[SimDevice], per_device: int, seconds: float
) -> None:
    url = cloud.url
    headers = cloud.admin_headers

    async def health(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"{url}/health") as response:
            await response.read()
            return response.status

    baseline = await load("GET /health (baseline)", health, 1, seconds)
    print(baseline.line(None))
    for query in queries(per_device):

        async def get(session: aiohttp.ClientSession, n: int, q: Query = query) -> int:
            device = fleet[n % len(fleet)]
            params = dict(q.params)
            if q.paging is not None:
                params |= q.paging(n, per_device)
            path = f"{url}/api/admin/v1/devices/{device.uuid}/logs"
            async with session.get(path, params=params, headers=headers) as response:
                body = await response.json()
                assert response.status != 200 or "logs" in body, body
                return response.status

        result: Result = await load(query.name, get, 1, seconds)
        print(result.line(None))


async def explain_and_prune(url: str, fleet: list[SimDevice], per_device: int) -> None:
    db = Database(database_url(url))
    try:
        service = LogService(db, lambda: datetime.now(UTC), 7, per_device)
        await explain_all(db, service, fleet[0].uuid, per_device)
        await prune_cost(db, per_device, [d.uuid for d in fleet])
    finally:
        await db.dispose()


async def explain_all(db: Database, service: LogService, uuid: str, per_device: int) -> None:
    captured: list[tuple[str, Any]] = []

    def grab(*args: Any) -> None:
        captured.append((args[2], args[3]))

    now = datetime.now(UTC)
    print("\nplans (device 0):")
    for query in queries(per_device):
        params = dict(query.params)
        if query.paging is not None:
            params |= query.paging(7 * (per_device // 2000), per_device)
        where = parse_filter(
            now,
            service=params.get("service"),
            level=params.get("level"),
            since=params.get("since"),
            text=params.get("q"),
        )
        after = params.get("after_seq")
        captured.clear()
        event.listen(db.engine.sync_engine, "before_cursor_execute", grab)
        try:
            await service.query(
                uuid, where, int(params.get("limit", "1000")), None if after is None else int(after)
            )
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", grab)
        print(f"  {query.name}:")
        for statement, parameters in captured:
            if "device_logs" in statement:
                for row in await plan(db, statement, parameters):
                    print(f"    {row}")


async def plan(db: Database, statement: str, parameters: Any) -> list[str]:
    sqlite = db.dialect == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, COSTS OFF) "
    async with db.reads.connect() as conn:
        rows = (await conn.exec_driver_sql(prefix + statement, tuple(parameters))).all()
    if sqlite:
        return [str(row[-1]) for row in rows]
    return [str(row[0]) for row in rows]


async def prune_cost(db: Database, per_device: int, uuids: list[str]) -> None:
    """An upload of 1000 to a device at its cap, with the prune (a new service has pruned
    nothing yet) and then without (pruned within PRUNE_INTERVAL)."""
    with_prune: list[float] = []
    without: list[float] = []
    start = datetime.now(UTC) - SPAN
    for uuid in uuids[: min(len(uuids), 10)]:
        async with db.reads.connect() as conn:
            top = int(
                await conn.scalar(
                    text("SELECT max(seq) FROM device_logs WHERE device_uuid = :u"), {"u": uuid}
                )
                or 0
            )
        service = LogService(db, lambda: datetime.now(UTC), 7, per_device)
        uploader = Uploader(uuid, datetime.now(UTC))
        for times in (with_prune, without):
            records = parse_upload(batch_body(top + 1, per_device, start, compress=False))
            started = time.perf_counter()
            result = await service.store(uploader, records)
            times.append((time.perf_counter() - started) * 1000)
            assert result.accepted == BATCH, result
            top += BATCH
        async with db.reads.connect() as conn:
            kept = await conn.scalar(
                text("SELECT count(*) FROM device_logs WHERE device_uuid = :u"), {"u": uuid}
            )
        assert kept == per_device + BATCH, kept  # pruned at the first upload only
    print(
        f"\nupload of {BATCH} at the cap, in process: with the prune (deletes {BATCH}) "
        f"median {statistics.median(with_prune):.1f} ms (max {max(with_prune):.1f}), "
        f"without {statistics.median(without):.1f} ms (max {max(without):.1f})"
    )


def run_queries(name: str, args: argparse.Namespace, work: Path) -> None:
    postgres = None
    url = f"sqlite:///{work / name / 'cloud.sqlite'}"
    if name == "postgresql":
        postgres = PostgresServer().start()
        url = postgres.create_database("bench_log_queries")
        assert postgres.proc is not None
        os.sched_setaffinity(postgres.proc.pid, {1})
    cloud = CloudProcess(work / name, database_url=url).start()
    assert cloud.proc is not None
    os.sched_setaffinity(cloud.proc.pid, {0})
    total = args.devices * args.per_device
    print(f"\n== {name}: {args.devices} x {args.per_device:,} records, cloud on one core ==")
    try:

        async def main() -> None:
            fleet = await provision_fleet(cloud, args.devices)
            start = datetime.now(UTC) - SPAN
            started = time.perf_counter()
            await fill(cloud.url, fleet, args.per_device, start)
            took = time.perf_counter() - started
            print(f"filled {total:,} records in {took:.0f} s ({total / took:,.0f} records/s)")
            if postgres is not None:
                db = Database(database_url(url))
                async with db.write_connection() as conn:
                    await conn.execute(text("ANALYZE device_logs"))
                await db.dispose()
            await time_queries(cloud, fleet, args.per_device, args.seconds)
            await explain_and_prune(url, fleet, args.per_device)

        asyncio.run(main())
    finally:
        cloud.stop()
        if postgres is not None:
            postgres.stop()
