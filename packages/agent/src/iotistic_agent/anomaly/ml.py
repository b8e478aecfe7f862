"""Between the service and the optional LSTM forecaster (``forecast.py``, which needs numpy).

Importing this module never imports numpy: ``create_forecasts`` does, and only when
``ANOMALY_ML_ENABLED`` is set; without numpy it warns once and returns None, and the service
goes on with the statistical methods.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from iotistic_agent.anomaly.config import AnomalyConfig
from iotistic_agent.anomaly.detector import Finding, severity_for

if TYPE_CHECKING:
    from iotistic_agent.anomaly.forecast import LSTMForecaster

log = logging.getLogger(__name__)

NUMPY_MISSING = (
    "ANOMALY_ML_ENABLED is set but numpy is not installed: install iotistic-agent[ml]; "
    "using the statistical methods only"
)
_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class Forecasts:
    """One ``LSTMForecaster`` per series, for at most ``max_series`` series."""

    def __init__(self, max_series: int) -> None:
        from iotistic_agent.anomaly.forecast import LSTMForecaster

        self._factory = LSTMForecaster
        self.max_series = max_series
        self._by_key: dict[tuple[str, str], LSTMForecaster | None] = {}
        self._full_logged = False

    def __len__(self) -> int:
        return sum(1 for f in self._by_key.values() if f is not None)

    def clear(self) -> None:
        self._by_key.clear()

    def discard(self, key: tuple[str, str]) -> None:
        self._by_key.pop(key, None)

    def get(self, key: tuple[str, str]) -> LSTMForecaster | None:
        return self._by_key.get(key)

    def step(
        self, key: tuple[str, str], x: float, config: AnomalyConfig
    ) -> tuple[float, Finding | None]:
        """Score ``x`` against the series' forecast, then learn from it.

        Returns (residual in sigma units, an "lstm" finding if beyond the z threshold); (0,
        None) while the forecaster warms up or when the series has none.
        """
        forecaster = self._forecaster(key)
        if forecaster is None:
            return 0.0, None
        sigma = 0.0
        finding: Finding | None = None
        expected = forecaster.predict()
        if expected is not None and forecaster.ready:
            sigma = forecaster.sigma(x)
            threshold = config.z_threshold * config.factor
            if sigma >= threshold:
                finding = Finding(
                    "lstm", severity_for(sigma / threshold), sigma, threshold, expected, sigma
                )
        forecaster.update(x, outlier=finding is not None)
        return sigma, finding

    def _forecaster(self, key: tuple[str, str]) -> LSTMForecaster | None:
        if key in self._by_key:
            return self._by_key[key]
        forecaster: LSTMForecaster | None = None
        if len(self._by_key) < self.max_series:
            forecaster = self._factory()
        elif not self._full_logged:
            self._full_logged = True
            log.warning(
                "anomaly forecasting covers %d series (ml_max_series); %.80s/%.80s and later "
                "series use the statistical methods only",
                self.max_series,
                key[0],
                key[1],
            )
        # Remember series without a forecaster too (bounded by the service's max_series), so
        # one is not created later when an earlier series stops.
        self._by_key[key] = forecaster
        return forecaster


def create_forecasts(config: AnomalyConfig) -> Forecasts | None:
    """Forecasters for ``config``: None when ML is off, or on but numpy is not installed."""
    if not config.ml_enabled:
        return None
    try:
        return Forecasts(config.ml_max_series)
    except ImportError:
        log.warning(NUMPY_MISSING)
        return None


def stronger(stat: Finding | None, lstm: Finding | None) -> Finding | None:
    """The finding reported: the forecaster's only when more severe than the statistics'
    (below every statistical method on a tie)."""
    if lstm is None:
        return stat
    if stat is None or _RANK[lstm.severity] > _RANK[stat.severity]:
        return lstm
    return stat
