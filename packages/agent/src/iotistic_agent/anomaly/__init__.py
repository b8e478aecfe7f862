"""Streaming anomaly detection on metrics and sensor readings (pure Python, no numpy)."""

from iotistic_agent.anomaly.config import AnomalyConfig, AnomalyConfigError
from iotistic_agent.anomaly.models import Detection, Method, Quality, Severity
from iotistic_agent.anomaly.service import AnomalyDetectionService, PointResult

__all__ = [
    "AnomalyConfig",
    "AnomalyConfigError",
    "AnomalyDetectionService",
    "Detection",
    "Method",
    "PointResult",
    "Quality",
    "Severity",
]
