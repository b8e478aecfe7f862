"""Detected anomalies in SQLite: stored with every field, listed newest first, bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iotistic_agent.store.anomaly_store import PRUNE_SLACK, AnomalyStore
from iotistic_agent.store.db import open_database


def detection(n: int, metric: str = "cpu_temp", severity: str = "warning") -> dict[str, Any]:
    return {
        "timestamp": 1_700_000_000_000 + n,
        "source": "system",
        "metric": metric,
        "value": 80.0 + n,
        "expected": 50.0,
        "method": "z_score",
        "severity": severity,
        "confidence": 0.9,
        "deviation": 4.2,
        "quality": "GOOD",
        "threshold": 3.0,
    }


def test_detections_round_trip_newest_first_and_filter(tmp_path: Path) -> None:
    store = AnomalyStore(open_database(tmp_path / "d.sqlite"))
    store.add([detection(1), detection(2, "memory_percent", "critical"), detection(3)])
    assert [d["timestamp"] for d in store.recent()] == [
        1_700_000_000_003,
        1_700_000_000_002,
        1_700_000_000_001,
    ]
    assert store.recent()[0] == detection(3)
    assert [d["metric"] for d in store.recent(severity="critical")] == ["memory_percent"]
    assert len(store.recent(metric="cpu_temp", limit=1)) == 1


def test_the_table_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    store = AnomalyStore(open_database(db), max_rows=50)
    for n in range(50 + PRUNE_SLACK + 1):
        store.add([detection(n)])
    again = AnomalyStore(open_database(db), max_rows=50)
    assert again.count() == 50
    kept = [d["timestamp"] for d in again.recent(limit=1000)]
    assert kept[0] == 1_700_000_000_000 + 50 + PRUNE_SLACK  # the newest is kept
    assert len(kept) == 50
