"""Agent settings from the environment, with the spec's names and defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    DATABASE_PATH: Path = Field(default_factory=lambda: Path.cwd() / "data" / "device.sqlite")
    DEVICE_API_HOST: str = "127.0.0.1"
    DEVICE_API_PORT: int = Field(default=48484, ge=0, le=65535)
    RECONCILIATION_INTERVAL_MS: int = Field(default=30000, ge=100)
    LOG_LEVEL: Literal["debug", "info", "warn", "warning", "error"] = "info"
    DEVICE_NAME: str | None = None
    DOCKER_HOST: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.DATABASE_PATH.parent
