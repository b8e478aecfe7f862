"""Anomaly detection quality: precision, recall and false positives on labelled series.

Run: .venv/bin/python bench/bench_anomaly_quality.py [--nab DIR] [--json FILE]

Two corpora, each series fed through a fresh ``AnomalyDetectionService`` (default settings
except the sensitivity), one point at a time with its own timestamp:

* NAB, the Numenta Anomaly Benchmark, in its own layout: ``DIR/labels/combined_windows.json``
  and ``DIR/data/<category>/<name>.csv`` (columns timestamp,value). Not committed; ``--nab``,
  else ``$NAB_DIR``, else ``/work/nab``. Only the data files present are scored.
* A seeded synthetic corpus of edge-device series with known anomalies (always run).

Scoring is event level and written here from the definitions (it is not NAB's scorer): the
first 15 % of every series is a probation period, learned from but not scored (as NAB does);
a label window counts as detected when any detection falls inside it; a detection outside
every window is a false positive. Precision = detections inside windows / scored detections,
recall = windows detected / windows, F1 of the two, and false positives per 1,000 scored
points; at severity floors info+, warning+ and critical, for sensitivities low, medium, high.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from iotistic_agent.anomaly import AnomalyConfig, AnomalyDetectionService
from iotistic_agent.anomaly.config import Sensitivity

PROBATION = 0.15
SENSITIVITIES: tuple[Sensitivity, ...] = ("low", "medium", "high")
FLOORS: tuple[tuple[str, int], ...] = (("info+", 0), ("warning+", 1), ("critical", 2))
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
METHODS = ("z_score", "mad", "iqr", "rate_change", "lstm")
DEFAULT_NAB = "/work/nab"

# Synthetic corpus: one reading a minute, 4,000 readings (2.8 days) per series.
SYN_POINTS = 4000
SYN_STEP_MS = 60_000
SYN_T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z
SYN_VARIANTS = 3
DAY = 1440  # readings
RAMP = 300  # readings a drift takes to reach its full size
SHIFT_GRACE = 100  # readings after a level shift still inside its window (one default window)


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # Unix ms, inclusive
    end: int  # Unix ms, inclusive
    kind: str = "window"  # synthetic: spike, drop, drift, shift


@dataclass(slots=True)
class Series:
    corpus: str
    category: str
    name: str
    timestamps: list[int]
    values: list[float]
    windows: list[Window]


@dataclass(frozen=True, slots=True)
class Hit:
    timestamp: int
    method: str
    rank: int


@dataclass(slots=True)
class Tally:
    points: int = 0
    windows: int = 0
    detected: int = 0
    tp: int = 0
    fp: int = 0

    def add(self, other: Tally) -> None:
        self.points += other.points
        self.windows += other.windows
        self.detected += other.detected
        self.tp += other.tp
        self.fp += other.fp

    def metrics(self) -> dict[str, Any]:
        scored = self.tp + self.fp
        precision = self.tp / scored if scored else None
        recall = self.detected / self.windows if self.windows else None
        f1 = _f1(precision, recall)
        # Event precision counts a detected window once however many alerts it drew, so
        # de-duplicating alerts inside a window is not scored as lost precision.
        events = self.detected + self.fp
        event_precision = self.detected / events if events else None
        return {
            "points": self.points,
            "windows": self.windows,
            "windows_detected": self.detected,
            "detections_in_windows": self.tp,
            "false_positives": self.fp,
            "precision": _round(precision),
            "recall": _round(recall),
            "f1": _round(f1),
            "event_precision": _round(event_precision),
            "event_f1": _round(_f1(event_precision, recall)),
            "fp_per_1k_points": round(1000 * self.fp / self.points, 3) if self.points else 0.0,
        }


@dataclass(slots=True)
class FileScore:
    tally: Tally
    fp_methods: Counter[str] = field(default_factory=Counter)
    fp_after_window: int = 0  # false positives soon after a window ended (slow to adapt)
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [windows, detected]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# --- NAB ---------------------------------------------------------------------------------


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def load_nab(root: Path) -> tuple[list[Series], list[str]]:
    """The labelled data files present under ``root``, and notes on what was skipped."""
    labels_path = root / "labels" / "combined_windows.json"
    notes: list[str] = []
    if not labels_path.is_file():
        return [], [f"no {labels_path}: NAB skipped"]
    labels: dict[str, list[list[str]]] = json.loads(labels_path.read_text())
    out: list[Series] = []
    for key in sorted(labels):
        path = root / "data" / key
        if not path.is_file():
            continue
        timestamps: list[int] = []
        values: list[float] = []
        with path.open(newline="") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader)]
            if "timestamp" not in header or "value" not in header:
                notes.append(f"{key}: no timestamp and value columns in {header}, skipped")
                continue
            t_col, v_col = header.index("timestamp"), header.index("value")
            for row in reader:
                if not row:
                    continue
                timestamps.append(_ms(row[t_col]))
                values.append(float(row[v_col]))
        windows = [Window(_ms(a), _ms(b)) for a, b in labels[key]]
        out.append(Series("nab", key.split("/")[0], key, timestamps, values, windows))
    present = {s.name for s in out}
    data_dir = root / "data"
    if data_dir.is_dir():
        for path in sorted(data_dir.glob("*/*.csv")):
            key = f"{path.parent.name}/{path.name}"
            if key not in present and key not in labels:
                notes.append(f"{key}: no labels, skipped")
    return out, notes


# --- synthetic corpus ------------------------------------------------------------------


def _ramp(i: int, start: int | None) -> float:
    if start is None or i < start:
        return 0.0
    return min(1.0, (i - start) / RAMP)


def _after(i: int, start: int | None) -> bool:
    return start is not None and i >= start


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:  # normal approximation, plenty for a counter benchmark
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass(frozen=True, slots=True)
class Events:
    spike: int | None = None
    drop: int | None = None
    drift: int | None = None
    shift: int | None = None


def _events(rng: random.Random) -> Events:
    """Spike and drop in either order, then drift and level shift (both persist) in either."""
    first, second = rng.sample(["spike", "drop"], 2)
    third, fourth = rng.sample(["drift", "shift"], 2)
    at = {
        first: rng.randint(800, 1100),
        second: rng.randint(1500, 1800),
        third: rng.randint(2200, 2500),
        fourth: rng.randint(3100, 3400),
    }
    return Events(at["spike"], at["drop"], at["drift"], at["shift"])


# Per kind: (readings a "spike" lasts, readings a "drop" lasts).
DURATIONS: dict[str, tuple[int, int]] = {
    "temperature_daily": (1, 3),
    "cpu_percent_bursty": (30, 20),
    "counter_quantised": (1, 30),
    "random_walk": (0, 0),
    "flat_rare_steps": (1, 3),
    "network_bytes_heavy_tail": (1, 20),
}


def _temperature(rng: random.Random, ev: Events) -> list[float]:
    phase = rng.randrange(DAY)
    out = []
    for i in range(SYN_POINTS):
        level = 22.0 + 4.0 * math.sin(2 * math.pi * (i + phase) / DAY)
        level += 3.0 * _ramp(i, ev.drift) - 3.0 * _after(i, ev.shift)
        x = level + rng.gauss(0.0, 0.25)
        if ev.spike is not None and i == ev.spike:
            x += 4.0
        if ev.drop is not None and ev.drop <= i < ev.drop + 3:
            x -= 4.0
        out.append(round(x, 2))
    return out


def _cpu(rng: random.Random, ev: Events) -> list[float]:
    out = []
    burst = 0
    burst_level = 0.0
    for i in range(SYN_POINTS):
        level = 12.0 + 30.0 * _ramp(i, ev.drift) + 20.0 * _after(i, ev.shift)
        x = level + rng.gauss(0.0, 2.0)
        if burst == 0 and rng.random() < 1 / 150:  # normal, unlabelled bursts
            burst, burst_level = rng.randint(1, 5), rng.uniform(50.0, 95.0)
        if burst:
            x = burst_level + rng.gauss(0.0, 3.0)
            burst -= 1
        if ev.spike is not None and ev.spike <= i < ev.spike + 30:  # runaway process
            x = 100.0 - abs(rng.gauss(0.0, 0.3))
        if ev.drop is not None and ev.drop <= i < ev.drop + 20:  # hung: nothing runs
            x = 0.0
        out.append(round(min(100.0, max(0.0, x)), 1))
    return out


def _counter(rng: random.Random, ev: Events) -> list[float]:
    out = []
    for i in range(SYN_POINTS):
        lam = 6.0 * (1.0 + _ramp(i, ev.drift)) * (3.0 if _after(i, ev.shift) else 1.0)
        x = float(_poisson(rng, lam))
        if ev.spike is not None and i == ev.spike:
            x += 35.0
        if ev.drop is not None and ev.drop <= i < ev.drop + 30:  # outage: nothing counted
            x = 0.0
        out.append(x)
    return out


def _random_walk(rng: random.Random, ev: Events) -> list[float]:
    x = 50.0
    out = []
    for _ in range(SYN_POINTS):
        x += rng.gauss(0.0, 0.05)
        out.append(round(x, 3))
    return out


def _flat(rng: random.Random, ev: Events) -> list[float]:
    base = float(rng.choice([45, 60, 1500]))
    out = []
    for i in range(SYN_POINTS):
        x = base * (1.0 + 0.12 * _ramp(i, ev.drift) + 0.1 * _after(i, ev.shift))
        if ev.spike is not None and i == ev.spike:
            x = base * 1.25
        if ev.drop is not None and ev.drop <= i < ev.drop + 3:
            x = 0.0
        out.append(round(x, 2))
    return out


def _network(rng: random.Random, ev: Events) -> list[float]:
    out = []
    for i in range(SYN_POINTS):
        level = 2e5 * (1.0 + 2.0 * _ramp(i, ev.drift)) * (4.0 if _after(i, ev.shift) else 1.0)
        x = level * rng.lognormvariate(0.0, 0.6)
        if ev.spike is not None and i == ev.spike:
            x *= 20.0
        if ev.drop is not None and ev.drop <= i < ev.drop + 20:  # link down
            x = 0.0
        out.append(float(round(x)))
    return out


GENERATORS: dict[str, Callable[[random.Random, Events], list[float]]] = {
    "temperature_daily": _temperature,
    "cpu_percent_bursty": _cpu,
    "counter_quantised": _counter,
    "random_walk": _random_walk,
    "flat_rare_steps": _flat,
    "network_bytes_heavy_tail": _network,
}


def synthetic_corpus(seed: int) -> list[Series]:
    out: list[Series] = []
    timestamps = [SYN_T0 + i * SYN_STEP_MS for i in range(SYN_POINTS)]
    last = SYN_POINTS - 1

    def ts(i: int) -> int:
        return timestamps[max(0, min(last, i))]

    for kind, generate in GENERATORS.items():
        spike_len, drop_len = DURATIONS[kind]
        for variant in range(SYN_VARIANTS):
            rng = random.Random(f"{seed}:{kind}:{variant}")
            ev = Events() if kind == "random_walk" else _events(rng)
            values = generate(rng, ev)
            windows: list[Window] = []
            if ev.spike is not None:
                windows.append(Window(ts(ev.spike - 2), ts(ev.spike + spike_len + 10), "spike"))
            if ev.drop is not None:
                windows.append(Window(ts(ev.drop - 2), ts(ev.drop + drop_len + 10), "drop"))
            if ev.drift is not None:
                windows.append(Window(ts(ev.drift), ts(ev.drift + RAMP + SHIFT_GRACE), "drift"))
            if ev.shift is not None:
                windows.append(Window(ts(ev.shift - 2), ts(ev.shift + SHIFT_GRACE), "shift"))
            windows.sort(key=lambda w: w.start)
            name = f"{kind}#{variant}"
            out.append(Series("synthetic", kind, name, timestamps, values, windows))
    return out


# --- detection and scoring ---------------------------------------------------------------


def detect(series: Series, sensitivity: Sensitivity) -> list[Hit]:
    service = AnomalyDetectionService(AnomalyConfig(sensitivity=sensitivity))
    source = series.corpus
    metric = series.name
    hits: list[Hit] = []
    process = service.process
    for ts, x in zip(series.timestamps, series.values, strict=True):
        result = process(source, metric, x, ts, "GOOD")
        for d in result.detections:
            hits.append(Hit(d.timestamp, d.method, SEVERITY_RANK[d.severity]))
    return hits


def score(series: Series, hits: Sequence[Hit], floor: int) -> FileScore:
    n = len(series.values)
    first = int(n * PROBATION)
    scored_from = series.timestamps[first] if n else 0
    windows = [w for w in series.windows if w.end >= scored_from]
    result = FileScore(Tally(points=n - first, windows=len(windows)))
    found = [False] * len(windows)
    for hit in hits:
        if hit.rank < floor or hit.timestamp < scored_from:
            continue
        inside = False
        for i, w in enumerate(windows):
            if w.start <= hit.timestamp <= w.end:
                found[i] = True
                inside = True
        if inside:
            result.tally.tp += 1
            continue
        result.tally.fp += 1
        result.fp_methods[hit.method] += 1
        for w in windows:  # within one window length after a window: the detector lags
            if 0 < hit.timestamp - w.end <= max(w.end - w.start, 1):
                result.fp_after_window += 1
                break
    result.tally.detected = sum(found)
    for w, hit_it in zip(windows, found, strict=True):
        entry = result.by_kind.setdefault(w.kind, [0, 0])
        entry[0] += 1
        entry[1] += int(hit_it)
    return result


def evaluate(corpus: list[Series]) -> tuple[dict[str, Any], int, float]:
    """Every series at every sensitivity; the report for the corpus, points fed, seconds."""
    report: dict[str, Any] = {}
    fed = 0
    elapsed = 0.0
    for sensitivity in SENSITIVITIES:
        per_file_hits: list[list[Hit]] = []
        for series in corpus:
            start = time.perf_counter()
            per_file_hits.append(detect(series, sensitivity))
            elapsed += time.perf_counter() - start
            fed += len(series.values)
        by_floor: dict[str, Any] = {}
        for floor_name, floor in FLOORS:
            overall = Tally()
            categories: dict[str, Tally] = {}
            fp_methods: Counter[str] = Counter()
            by_kind: dict[str, list[int]] = {}
            fp_after = 0
            files: list[dict[str, Any]] = []
            for series, hits in zip(corpus, per_file_hits, strict=True):
                fs = score(series, hits, floor)
                overall.add(fs.tally)
                categories.setdefault(series.category, Tally()).add(fs.tally)
                fp_methods.update(fs.fp_methods)
                fp_after += fs.fp_after_window
                for kind, (windows, detected) in fs.by_kind.items():
                    entry = by_kind.setdefault(kind, [0, 0])
                    entry[0] += windows
                    entry[1] += detected
                files.append(
                    {
                        "file": series.name,
                        "category": series.category,
                        **fs.tally.metrics(),
                        "fp_by_method": dict(fs.fp_methods),
                        "fp_after_window": fs.fp_after_window,
                    }
                )
            by_floor[floor_name] = {
                "overall": overall.metrics(),
                "categories": {c: t.metrics() for c, t in sorted(categories.items())},
                "fp_by_method": {m: fp_methods[m] for m in METHODS if fp_methods[m]},
                "fp_after_window": fp_after,
                "recall_by_anomaly_kind": {
                    k: {"windows": w, "detected": d, "recall": _round(d / w if w else None)}
                    for k, (w, d) in sorted(by_kind.items())
                },
                "files": files,
            }
        report[sensitivity] = by_floor
    return report, fed, elapsed


# --- output ------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


def print_corpus(title: str, report: dict[str, Any], worst: int) -> None:
    print(f"\n=== {title} ===")
    print(
        f"{'sensitivity':<11} {'floor':<9} {'precision':>9} {'recall':>7} {'F1':>5} "
        f"{'event P':>7} {'event F1':>8} "
        f"{'FP/1k pts':>9} {'in-window':>9} {'FP':>6} {'windows hit':>11}"
    )
    for sensitivity in SENSITIVITIES:
        for floor_name, _ in FLOORS:
            m = report[sensitivity][floor_name]["overall"]
            print(
                f"{sensitivity:<11} {floor_name:<9} {_fmt(m['precision']):>9} "
                f"{_fmt(m['recall']):>7} {_fmt(m['f1']):>5} "
                f"{_fmt(m['event_precision']):>7} {_fmt(m['event_f1']):>8} "
                f"{m['fp_per_1k_points']:>9.2f} "
                f"{m['detections_in_windows']:>9} {m['false_positives']:>6} "
                f"{m['windows_detected']:>5}/{m['windows']:<5}"
            )
    categories = list(report["medium"]["info+"]["categories"])
    print("\nper category: precision / recall / FP per 1k points, by severity floor")
    head = "".join(f" {name:>20}" for name, _ in FLOORS)
    print(f"{'category':<26} {'sens':<6}{head}")
    for category in categories:
        for sensitivity in SENSITIVITIES:
            cells = []
            for floor_name, _ in FLOORS:
                m = report[sensitivity][floor_name]["categories"][category]
                cell = f"{_fmt(m['precision'])}/{_fmt(m['recall'])}/{m['fp_per_1k_points']:.1f}"
                cells.append(f" {cell:>20}")
            print(f"{category:<26} {sensitivity:<6}{''.join(cells)}")

    print("\nfalse positives by method (share), and FPs within one window length after a window")
    for sensitivity in SENSITIVITIES:
        for floor_name, _ in FLOORS:
            entry = report[sensitivity][floor_name]
            total = sum(entry["fp_by_method"].values())
            parts = ", ".join(
                f"{m} {c} ({100 * c / total:.0f}%)" for m, c in entry["fp_by_method"].items()
            )
            print(
                f"  {sensitivity:<7} {floor_name:<9} total {total:>5}: {parts or '-'}; "
                f"after a window {entry['fp_after_window']}"
            )

    kinds = report["medium"]["info+"]["recall_by_anomaly_kind"]
    if len(kinds) > 1:
        print("\nrecall by anomaly kind (windows detected / windows), info+ and warning+")
        for sensitivity in SENSITIVITIES:
            parts = []
            for kind in kinds:
                a = report[sensitivity]["info+"]["recall_by_anomaly_kind"][kind]
                b = report[sensitivity]["warning+"]["recall_by_anomaly_kind"][kind]
                parts.append(f"{kind} {a['detected']}/{b['detected']}/{a['windows']}")
            print(f"  {sensitivity:<7} " + ", ".join(parts))

    print(f"\nworst files (most false positives), sensitivity medium, info+ (top {worst})")
    files = sorted(
        report["medium"]["info+"]["files"], key=lambda f: f["false_positives"], reverse=True
    )
    for f in files[:worst]:
        methods = ", ".join(f"{m} {c}" for m, c in sorted(f["fp_by_method"].items()))
        print(
            f"  {f['file']:<58} FP {f['false_positives']:>4} "
            f"({f['fp_per_1k_points']:.1f}/1k), windows {f['windows_detected']}/{f['windows']}, "
            f"after window {f['fp_after_window']}; {methods or '-'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--nab", default=os.environ.get("NAB_DIR", DEFAULT_NAB), help="NAB-format directory"
    )
    parser.add_argument("--json", type=Path, help="also write the full results here")
    parser.add_argument("--seed", type=int, default=7, help="synthetic corpus seed")
    parser.add_argument("--worst", type=int, default=10, help="worst files listed per corpus")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "config": {
            "defaults": "AnomalyConfig() except sensitivity",
            "window_size": AnomalyConfig().window_size,
            "cooldown_ms": AnomalyConfig().cooldown_ms,
            "probation": PROBATION,
            "seed": args.seed,
        },
        "corpora": {},
    }
    total_points = 0
    total_seconds = 0.0

    nab_root = Path(args.nab)
    nab: list[Series] = []
    if nab_root.is_dir():
        nab, notes = load_nab(nab_root)
        for note in notes:
            print(f"note: {note}")
    else:
        print(f"NAB directory {nab_root} not found: synthetic corpus only")
    if nab:
        points = sum(len(s.values) for s in nab)
        print(f"NAB: {len(nab)} labelled files, {points:,} points, from {nab_root}")
        report, fed, seconds = evaluate(nab)
        total_points += fed
        total_seconds += seconds
        results["corpora"]["nab"] = {"files": [s.name for s in nab], "report": report}
        print_corpus("NAB", report, args.worst)
    elif nab_root.is_dir():
        print(f"no labelled NAB data files under {nab_root}: synthetic corpus only")

    synthetic = synthetic_corpus(args.seed)
    points = sum(len(s.values) for s in synthetic)
    print(f"\nsynthetic: {len(synthetic)} series, {points:,} points, seed {args.seed}")
    report, fed, seconds = evaluate(synthetic)
    total_points += fed
    total_seconds += seconds
    results["corpora"]["synthetic"] = {"files": [s.name for s in synthetic], "report": report}
    print_corpus("synthetic", report, args.worst)

    wall = time.perf_counter() - started
    rate = total_points / total_seconds if total_seconds else 0.0
    results["timing"] = {
        "points_fed": total_points,
        "detector_seconds": round(total_seconds, 3),
        "points_per_second": round(rate),
        "wall_seconds": round(wall, 3),
    }
    print(
        f"\n{total_points:,} points fed (all sensitivities) in {total_seconds:.1f} s of "
        f"detection: {rate:,.0f} points/s; {wall:.1f} s wall in all"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
