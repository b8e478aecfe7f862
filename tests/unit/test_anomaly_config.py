"""AnomalyConfig.from_env: the spec's variable names, defaults and clear errors."""

from __future__ import annotations

import pytest
from iotistic_agent.anomaly import AnomalyConfig, AnomalyConfigError


def test_defaults_are_the_specs() -> None:
    config = AnomalyConfig.from_env({})
    assert config.enabled is True
    assert config.window_size == 100
    assert config.sensitivity == "medium"
    assert config.z_threshold == 3.0
    assert config.mad_threshold == 3.0
    assert config.rate_threshold == 50.0
    assert config.ml_enabled is False
    assert config.warmup == 100
    assert config.factor == 1.0


def test_reads_every_variable() -> None:
    config = AnomalyConfig.from_env(
        {
            "ANOMALY_DETECTION_ENABLED": "false",
            "ANOMALY_WINDOW_SIZE": "250",
            "ANOMALY_SENSITIVITY": "HIGH",
            "ANOMALY_DETECTION_Z_THRESHOLD": "2.5",
            "ANOMALY_DETECTION_MAD_THRESHOLD": "3.5",
            "ANOMALY_DETECTION_RATE_THRESHOLD": "20",
            "ANOMALY_ML_ENABLED": "1",
        }
    )
    assert config == AnomalyConfig(
        enabled=False,
        window_size=250,
        sensitivity="high",
        z_threshold=2.5,
        mad_threshold=3.5,
        rate_threshold=20.0,
        ml_enabled=True,
    )
    assert config.factor < 1.0


def test_window_alias_and_empty_values() -> None:
    assert AnomalyConfig.from_env({"ANOMALY_DETECTION_WINDOW_SIZE": "50"}).window_size == 50
    same = {"ANOMALY_WINDOW_SIZE": "60", "ANOMALY_DETECTION_WINDOW_SIZE": "60"}
    assert AnomalyConfig.from_env(same).window_size == 60
    assert AnomalyConfig.from_env({"ANOMALY_WINDOW_SIZE": " "}).window_size == 100


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANOMALY_DETECTION_ENABLED": "maybe"}, "ANOMALY_DETECTION_ENABLED must be true or false"),
        ({"ANOMALY_ML_ENABLED": "2"}, "ANOMALY_ML_ENABLED must be true or false"),
        ({"ANOMALY_WINDOW_SIZE": "abc"}, "ANOMALY_WINDOW_SIZE must be a whole number"),
        ({"ANOMALY_WINDOW_SIZE": "5"}, "ANOMALY_WINDOW_SIZE must be between 10 and 100000"),
        (
            {"ANOMALY_DETECTION_WINDOW_SIZE": "1000001"},
            "ANOMALY_DETECTION_WINDOW_SIZE must be between",
        ),
        (
            {"ANOMALY_WINDOW_SIZE": "100", "ANOMALY_DETECTION_WINDOW_SIZE": "200"},
            "disagree",
        ),
        ({"ANOMALY_SENSITIVITY": "extreme"}, "ANOMALY_SENSITIVITY must be low, medium or high"),
        ({"ANOMALY_DETECTION_Z_THRESHOLD": "0"}, "ANOMALY_DETECTION_Z_THRESHOLD must be a pos"),
        ({"ANOMALY_DETECTION_MAD_THRESHOLD": "nan"}, "ANOMALY_DETECTION_MAD_THRESHOLD must be"),
        ({"ANOMALY_DETECTION_RATE_THRESHOLD": "fifty"}, "ANOMALY_DETECTION_RATE_THRESHOLD must"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(AnomalyConfigError, match=message):
        AnomalyConfig.from_env(env)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(AnomalyConfigError, match="window_size"):
        AnomalyConfig(window_size=3)
    with pytest.raises(AnomalyConfigError, match="z_threshold"):
        AnomalyConfig(z_threshold=float("inf"))
    with pytest.raises(AnomalyConfigError, match="warmup_points"):
        AnomalyConfig(warmup_points=1)
