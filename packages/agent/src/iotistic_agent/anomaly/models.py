"""The detection record, in the spec's output shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Method = Literal["z_score", "mad", "iqr", "rate_change", "lstm"]
Severity = Literal["info", "warning", "critical"]
Quality = Literal["GOOD", "UNCERTAIN", "BAD"]

SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Detection:
    timestamp: int  # Unix milliseconds, as the spec's example
    source: str
    metric: str
    value: float
    expected: float  # the baseline the value was compared with (mean, median or trend)
    method: Method
    severity: Severity
    confidence: float  # 0..1
    deviation: float  # the method's statistic, in the same units as threshold
    quality: Quality
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "source": self.source,
            "metric": self.metric,
            "value": self.value,
            "expected": self.expected,
            "method": self.method,
            "severity": self.severity,
            "confidence": self.confidence,
            "deviation": self.deviation,
            "quality": self.quality,
            "threshold": self.threshold,
        }
