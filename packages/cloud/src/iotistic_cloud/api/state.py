"""Typed access to what create_app puts on ``app.state``."""

from __future__ import annotations

from fastapi import Request

from ..composition import Cloud


def cloud_of(request: Request) -> Cloud:
    cloud: Cloud = request.app.state.cloud
    return cloud
