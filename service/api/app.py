"""The FastAPI application: ``create_app(settings)``; the model lives on ``app.state``.

Resources are made once per app and shared by every route: the settings, the stats, the
in-flight limiter and the API keys at construction, the model in the lifespan. Routes live in
routers by concern (:mod:`.routes.predict`, :mod:`.routes.ops`, :mod:`.stream`, :mod:`.web`)
and reach those resources through :mod:`.deps`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import numpy as np
from fastapi import FastAPI

from service import __version__
from service.api.auth import ApiKeys
from service.api.errors import install_error_handlers
from service.api.limiter import InflightLimiter
from service.api.middleware import (
    BodySizeLimitMiddleware,
    LoadSheddingMiddleware,
    RequestStatsMiddleware,
    RouteLabels,
)
from service.api.routes import ops, predict
from service.api.stats import ServiceStats
from service.api.stream import router as stream_router
from service.api.web import router as web_router
from service.api.web import static_files
from service.model import EmotionModel, load_model
from service.settings import Settings

log = logging.getLogger(__name__)


def _warm_up(model: EmotionModel) -> None:
    """Run the whole feature and inference path once, so the first request is not slow."""
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(model.feature_set.sample_rate)).astype(np.float32)
    model.predict(samples)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.ready = False
    app.state.model = load_model(settings.model_path, threads=settings.ort_threads)
    app.state.stats.model_info.info(
        {
            "name": app.state.model.name,
            "version": app.state.model.version,
            "feature_set": app.state.model.feature_set.name,
        }
    )
    if settings.warmup:
        # Through the threadpool: this also imports anyio's backend and starts a worker
        # thread, which otherwise cost the first request ~15 ms (py-spy; bench/speed.py).
        await anyio.to_thread.run_sync(_warm_up, app.state.model)
    app.state.ready = True
    log.info("ready: serving %s", settings.model_path)
    try:
        yield
    finally:
        app.state.ready = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. Nothing is loaded until the lifespan starts.

    Parameters
    ----------
    settings : Settings or None
        Defaults to the ``SER_*`` environment.

    Returns
    -------
    FastAPI
        With ``state.settings``, ``state.stats``, ``state.limiter`` and ``state.api_keys``
        set; ``state.model`` and ``state.ready`` once the lifespan has run.

    Raises
    ------
    ValueError
        When the API keys file holds something other than SHA-256 digests.
    """
    settings = settings or Settings()
    stats = ServiceStats()
    app = FastAPI(
        title="Speech emotion recognition",
        version=__version__,
        summary="Classify the emotion in a speech recording.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.stats = stats
    app.state.ready = False
    app.state.limiter = InflightLimiter(settings.max_inflight, stats)
    app.state.api_keys = ApiKeys.from_sources(
        keys=settings.api_keys, keys_file=settings.api_keys_file
    )
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        on_reject=lambda: stats.record_error("upload_too_large"),
    )
    app.add_middleware(
        LoadSheddingMiddleware,
        limiter=app.state.limiter,
        stats=stats,
        max_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(
        RequestStatsMiddleware, stats=stats, labels=RouteLabels(lambda: app.router.routes)
    )
    app.include_router(predict.router)
    app.include_router(ops.router)
    app.include_router(stream_router)
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    return app
