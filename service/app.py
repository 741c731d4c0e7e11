"""The FastAPI application: ``create_app(settings)``; the model lives on ``app.state``."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Request, UploadFile
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.errors import NotReadyError, OverloadedError, install_error_handlers
from service.inference import classify_clip
from service.limits import BodySizeLimitMiddleware
from service.model import EmotionModel, load_model
from service.schemas import ModelInfo, PredictResponse
from service.settings import Settings
from service.stats import ServiceStats

log = logging.getLogger(__name__)

KNOWN_ROUTES = {"/predict", "/metrics", "/healthz", "/readyz", "/v1/model", "/"}


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
        {"name": app.state.model.name, "version": app.state.model.version,
         "feature_set": app.state.model.feature_set.name}
    )
    if settings.warmup:
        _warm_up(app.state.model)
    app.state.ready = True
    log.info("ready: serving %s", settings.model_path)
    try:
        yield
    finally:
        app.state.ready = False


class RequestStatsMiddleware:
    """Counts every answer by route and status, and tags it with a request id."""

    def __init__(self, app: ASGIApp, *, stats: ServiceStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in KNOWN_ROUTES else "other"
        request_id = next(
            (v.decode("latin-1")[:128] for k, v in scope.get("headers", ()) if k == b"x-request-id"),
            uuid.uuid4().hex,
        )
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_stats(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.stats.record_request(route, int(message["status"]))
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, send_with_stats)


def get_model(request: Request) -> EmotionModel:
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("The model is not loaded yet.", headers={"Retry-After": "1"})
    model: EmotionModel = request.app.state.model
    return model


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_stats(request: Request) -> ServiceStats:
    stats: ServiceStats = request.app.state.stats
    return stats


class InflightLimiter:
    """Refuse work past ``limit`` concurrent inferences instead of queueing without bound."""

    def __init__(self, limit: int, stats: ServiceStats) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._stats = stats

    def __enter__(self) -> InflightLimiter:
        if not self._slots.acquire(blocking=False):
            raise OverloadedError(
                "The service is at capacity; retry shortly.", headers={"Retry-After": "1"}
            )
        self._stats.inflight.inc()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stats.inflight.dec()
        self._slots.release()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. Nothing is loaded until the lifespan starts."""
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
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        on_reject=lambda: stats.record_error("upload_too_large"),
    )
    app.add_middleware(RequestStatsMiddleware, stats=stats)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            413: {"description": "Upload or audio longer than the limits"},
            415: {"description": "Not a supported audio format"},
            422: {"description": "Invalid audio or missing file field"},
            503: {"description": "Overloaded or not ready"},
        },
    )
    def predict(
        request: Request,
        file: Annotated[UploadFile, File(description="An audio file (WAV, FLAC, OGG, MP3, AIFF).")],
        model: Annotated[EmotionModel, Depends(get_model)],
        settings: Annotated[Settings, Depends(get_settings)],
        stats: Annotated[ServiceStats, Depends(get_stats)],
    ) -> dict[str, Any]:
        """Classify the emotion in one uploaded recording."""
        with request.app.state.limiter:
            data = file.file.read()
            result = classify_clip(model, data, max_duration_s=settings.max_audio_seconds)
        stats.record_timing(result.timings_s)
        return {
            "label": result.prediction.label,
            "confidence": result.prediction.confidence,
            "probabilities": result.prediction.probabilities,
            "duration_s": round(result.duration_s, 4),
            "model": model.version,
            "timing_ms": {k: round(v * 1000.0, 3) for k, v in result.timings_s.items()},
        }

    @app.get("/metrics")
    def metrics(
        request: Request, stats: Annotated[ServiceStats, Depends(get_stats)]
    ) -> JSONResponse:
        """Model evaluation metrics and the service's own counters, as JSON."""
        model: EmotionModel | None = getattr(request.app.state, "model", None)
        body = {
            "model": None if model is None else {
                "name": model.name,
                "version": model.version,
                "labels": list(model.labels),
                "evaluation": model.metrics,
            },
            "service": stats.snapshot(),
        }
        return JSONResponse(body)

    @app.get("/v1/model", response_model=ModelInfo)
    def model_info(model: Annotated[EmotionModel, Depends(get_model)]) -> dict[str, Any]:
        """The served model's contract, training data summary and evaluation metrics."""
        info = model.info()
        card = model.path.with_suffix(".card.md")
        info["card"] = card.read_text(encoding="utf-8") if card.is_file() else None
        return info

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the model is loaded and warmed up."""
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ready", "model": request.app.state.model.version})
        return JSONResponse({"status": "not_ready"}, status_code=503)

    return app
