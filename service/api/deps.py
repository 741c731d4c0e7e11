"""Typed dependencies: what a route needs from ``app.state``, declared once.

The getters are ``async`` only to run on the event loop: they never block, and plain ``def``
dependencies would each cost a request a threadpool hop. They take an ``HTTPConnection`` so
that HTTP routes and the WebSocket can use them alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from service.api.auth import require_api_key
from service.api.limiter import InflightLimiter
from service.api.stats import ServiceStats
from service.errors import NotReadyError
from service.model import EmotionModel
from service.settings import Settings


def ready_model(connection: HTTPConnection) -> EmotionModel:
    """The served model; :class:`NotReadyError` until the lifespan has loaded and warmed it."""
    if not getattr(connection.app.state, "ready", False):
        raise NotReadyError("The model is not loaded yet.", headers={"Retry-After": "1"})
    model: EmotionModel = connection.app.state.model
    return model


async def get_model(connection: HTTPConnection) -> EmotionModel:
    return ready_model(connection)


async def get_settings(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


async def get_stats(connection: HTTPConnection) -> ServiceStats:
    stats: ServiceStats = connection.app.state.stats
    return stats


async def get_limiter(connection: HTTPConnection) -> InflightLimiter:
    limiter: InflightLimiter = connection.app.state.limiter
    return limiter


ModelDep = Annotated[EmotionModel, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StatsDep = Annotated[ServiceStats, Depends(get_stats)]
LimiterDep = Annotated[InflightLimiter, Depends(get_limiter)]

#: Route dependency: 401/403 unless a valid API key is sent (when keys are configured).
API_KEY = Depends(require_api_key)
