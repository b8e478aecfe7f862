"""Anomaly detection core: throughput, per-point latency and memory per monitored metric.

Run: .venv/bin/python bench/bench_anomaly.py [--points 200000] [--ml]
Baseline in the same run: a loop that only appends each point to its metric's deque and keeps
a running mean (the least any windowed detector must do), so the ratio survives a noisy machine.
All methods are on (z-score, MAD, IQR, rate of change); every series is past its warm-up.
``--ml`` adds the optional LSTM forecaster (needs numpy, the agent's ``ml`` extra): points/s
and per-point latency with it against statistics only in the same run (on ``--ml-points``
points, every forecaster past its warm-up too), and memory per series with it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))

from anomaly_support import KINDS, clean_series
from iotistic_agent.anomaly import AnomalyConfig, AnomalyDetectionService

METRICS = 60  # 10 series of each kind
ML_WARMUP = 400  # points per series before timing with ML: past the forecaster's warm-up
T0 = 1_736_985_600_000


def stream(points: int) -> list[tuple[str, float, int]]:
    per_metric = points // METRICS + 1
    columns = []
    for m in range(METRICS):
        kind = KINDS[m % len(KINDS)]
        columns.append([(f"{kind}-{m}", v) for v in clean_series(kind, per_metric, m)])
    out = []
    for i in range(per_metric):
        for column in columns:
            name, value = column[i]
            out.append((name, value, T0 + i * 1000))
    return out[:points]


def warmed(
    window: int, data: list[tuple[str, float, int]], ml: bool = False
) -> AnomalyDetectionService:
    config = AnomalyConfig(window_size=window, warmup_points=window, ml_enabled=ml)
    service = AnomalyDetectionService(config)
    points = max(window, ML_WARMUP) if ml else window
    for m in range(METRICS):
        kind = KINDS[m % len(KINDS)]
        for i, value in enumerate(clean_series(kind, points, 10_000 + m)):
            service.process_data_point("system", f"{kind}-{m}", value, T0 - (points - i) * 1000)
    return service


def baseline_rate(window: int, data: list[tuple[str, float, int]]) -> float:
    windows: dict[str, deque[float]] = {}
    sums: dict[str, float] = {}

    def push(metric: str, value: float) -> float:
        w = windows.get(metric)
        if w is None:
            w = windows[metric] = deque()
            sums[metric] = 0.0
        if len(w) == window:
            sums[metric] -= w.popleft()
        w.append(value)
        sums[metric] += value
        return sums[metric] / len(w)

    started = time.perf_counter()
    for metric, value, _ts in data:
        push(metric, value)
    return len(data) / (time.perf_counter() - started)


def detector_rate(window: int, data: list[tuple[str, float, int]], ml: bool = False) -> float:
    service = warmed(window, data, ml)
    process = service.process_data_point
    started = time.perf_counter()
    for metric, value, ts in data:
        process("system", metric, value, ts)
    return len(data) / (time.perf_counter() - started)


def latencies_us(data: list[tuple[str, float, int]], ml: bool = False) -> tuple[float, float]:
    service = warmed(100, data, ml)
    process = service.process_data_point
    clock = time.perf_counter_ns
    samples = []
    for metric, value, ts in data:
        started = clock()
        process("system", metric, value, ts)
        samples.append(clock() - started)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def memory_per_metric(window: int, metrics: int = 1000) -> tuple[float, float]:
    values = list(clean_series("cpu_temp", window, 0))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    service = AnomalyDetectionService(AnomalyConfig(window_size=window))
    for m in range(metrics):
        name = f"metric-{m}"
        for i, value in enumerate(values):
            service.process_data_point("system", name, value + m, T0 + i * 1000)
    detector = (tracemalloc.get_traced_memory()[0] - before) / metrics
    tracemalloc.stop()
    del service
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    plain = {}
    for m in range(metrics):
        plain[f"metric-{m}"] = deque(value + m for value in values)
    base = (tracemalloc.get_traced_memory()[0] - before) / metrics
    tracemalloc.stop()
    return detector, base


def ml_memory_per_metric(metrics: int = 200, points: int = 120) -> tuple[float, float]:
    """tracemalloc per metric after ``points`` points each: (with ML, statistics only)."""
    values = list(clean_series("cpu_temp", points, 0))
    out = []
    for ml in (True, False):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        service = AnomalyDetectionService(AnomalyConfig(ml_enabled=ml, ml_max_series=metrics))
        for m in range(metrics):
            for i, value in enumerate(values):
                service.process_data_point("system", f"metric-{m}", value + m, T0 + i * 1000)
        out.append((tracemalloc.get_traced_memory()[0] - before) / metrics)
        tracemalloc.stop()
        del service
    return out[0], out[1]


def ml_section(points: int) -> None:
    data = stream(points)
    print(f"\nwith the LSTM forecaster: {len(data)} points over {METRICS} series, window 100")
    print("| case | points/s | vs statistics only |")
    print("|---|---|---|")
    stats = max(detector_rate(100, data) for _ in range(2))
    ml = max(detector_rate(100, data, ml=True) for _ in range(2))
    print(f"| statistics only | {stats:,.0f} | 1x |")
    print(f"| statistics + LSTM | {ml:,.0f} | {ml / stats:.3f}x |")
    p50, p99 = latencies_us(data)
    ml50, ml99 = latencies_us(data, ml=True)
    print(f"per point: statistics p50 {p50:.1f} us, p99 {p99:.1f} us; ", end="")
    print(f"with LSTM p50 {ml50:.1f} us, p99 {ml99:.1f} us")
    with_ml, without = ml_memory_per_metric()
    print(
        f"memory per metric (200 metrics, tracemalloc): with LSTM {with_ml / 1024:.1f} KiB, "
        f"statistics only {without / 1024:.1f} KiB (the forecaster: "
        f"{(with_ml - without) / 1024:.1f} KiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--ml", action="store_true", help="also measure the LSTM forecaster")
    parser.add_argument("--ml-points", type=int, default=20_000)
    parser.add_argument("--ml-only", action="store_true", help="only the --ml section")
    args = parser.parse_args()
    if args.ml_only:
        ml_section(args.ml_points)
        return
    data = stream(args.points)
    print(f"{len(data)} points over {METRICS} series ({', '.join(KINDS)}), one core")
    print("| case | points/s | vs baseline |")
    print("|---|---|---|")
    for window in (100, 1000, 10_000):
        base = max(baseline_rate(window, data) for _ in range(3))
        rate = max(detector_rate(window, data) for _ in range(3))
        print(f"| baseline: deque + running mean, window {window} | {base:,.0f} | 1x |")
        print(f"| detector, all methods, window {window} | {rate:,.0f} | {rate / base:.2f}x |")
    p50, p99 = latencies_us(data)
    print(f"\nper point, window 100: p50 {p50:.1f} us, p99 {p99:.1f} us")
    for window in (100, 1000):
        detector, base = memory_per_metric(window)
        print(
            f"memory per metric, window {window} (1000 metrics): {detector / 1024:.1f} KiB "
            f"(baseline deque of the window: {base / 1024:.1f} KiB, {detector / base:.1f}x)"
        )
    if args.ml:
        ml_section(args.ml_points)


if __name__ == "__main__":
    main()
