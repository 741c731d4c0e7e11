"""The FastAPI application: ``create_app(settings)``; the model lives on ``app.state``."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio.to_thread
import numpy as np
from fastapi import Depends, FastAPI, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.api.errors import install_error_handlers
from service.auth import ApiKeys, require_api_key
from service.errors import (
    NotReadyError,
    OverloadedError,
    TooManyFilesError,
    describe_error,
    error_body,
)
from service.inference import ClipResult, classify_clip, clip_answer
from service.limits import BodySizeLimitMiddleware
from service.logs import request_id_var
from service.model import EmotionModel, load_model
from service.schemas import BatchResponse, ModelInfo, PredictResponse
from service.settings import Settings
from service.stats import ServiceStats
from service.streaming import router as streaming_router
from service.timeline import classify_with_timeline
from service.web import router as web_router
from service.web import static_files

log = logging.getLogger(__name__)
access_log = logging.getLogger("service.access")

KNOWN_ROUTES = {
    "/predict",
    "/predict/raw",
    "/predict/batch",
    "/metrics",
    "/healthz",
    "/readyz",
    "/v1/model",
    "/",
}


#: The error answers both single-clip routes document.
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "API key required (when auth is on)"},
    403: {"description": "API key not valid"},
    413: {"description": "Body or audio longer than the limits"},
    415: {"description": "Not a supported audio format"},
    422: {"description": "Invalid or empty audio, or a missing file field"},
    503: {"description": "Overloaded or not ready"},
}


def server_timing(timings_s: dict[str, float]) -> str:
    return ", ".join(f"{stage};dur={1000 * seconds:.3f}" for stage, seconds in timings_s.items())


def prediction_response(result: ClipResult, model: EmotionModel) -> JSONResponse:
    """The answer of the single-clip routes, already JSON: built from plain floats and strings,
    it needs no response-model validation, which for a sync route FastAPI runs in a second
    threadpool hop (0.07 ms of the 0.55 ms the framework took per request, measured in
    process). ``PredictResponse`` still documents it, and the API tests pin the body to it."""
    body = clip_answer(result, model)
    return JSONResponse(body, headers={"Server-Timing": server_timing(result.timings_s)})


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
            (
                v.decode("latin-1")[:128]
                for k, v in scope.get("headers", ())
                if k == b"x-request-id"
            ),
            uuid.uuid4().hex,
        )
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_stats(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.stats.record_request(route, status)
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_stats)
        finally:
            access_log.info(
                "%s %s %d",
                scope.get("method", ""),
                path,
                status,
                extra={
                    "status": status,
                    "route": route,
                    "request_id": request_id,
                    "duration_ms": round(1000 * (time.perf_counter() - started), 3),
                },
            )
            request_id_var.reset(token)


# The getters are ``async`` only to run on the event loop: they never block, and plain ``def``
# dependencies would each cost a request a threadpool hop.
async def get_model(request: Request) -> EmotionModel:
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("The model is not loaded yet.", headers={"Retry-After": "1"})
    model: EmotionModel = request.app.state.model
    return model


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_stats(request: Request) -> ServiceStats:
    stats: ServiceStats = request.app.state.stats
    return stats


class InflightLimiter:
    """Refuse work past ``limit`` concurrent inferences instead of queueing without bound."""

    def __init__(self, limit: int, stats: ServiceStats) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._stats = stats
        self.limit = limit
        self.busy = 0

    @property
    def full(self) -> bool:
        return self.busy >= self.limit

    def __enter__(self) -> InflightLimiter:
        if not self._slots.acquire(blocking=False):
            raise OverloadedError(
                "The service is at capacity; retry shortly.", headers={"Retry-After": "1"}
            )
        self.busy += 1
        self._stats.inflight.inc()
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy -= 1
        self._stats.inflight.dec()
        self._slots.release()


class LoadSheddingMiddleware:
    """Answer 503 before reading an upload when every inference slot is taken.

    The limiter inside the handler stays authoritative; this only spares a saturated worker
    from parsing bodies it would refuse anyway, which keeps overload answers and probes fast.
    The body is drained unparsed (up to the upload limit) so the client reads a clean 503
    instead of a connection reset in the middle of its upload.
    """

    def __init__(
        self, app: ASGIApp, *, limiter: InflightLimiter, stats: ServiceStats, max_bytes: int
    ) -> None:
        self.app, self.limiter, self.stats, self.max_bytes = app, limiter, stats, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "POST"
            and scope.get("path", "").startswith("/predict")
            and self.limiter.full
        ):
            self.stats.record_error("overloaded")
            drained, more = 0, True
            while more and drained <= self.max_bytes:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                drained += len(message.get("body", b""))
                more = message.get("more_body", False)
            headers = {"Retry-After": "1"} | ({"Connection": "close"} if more else {})
            response = JSONResponse(
                error_body("overloaded", "The service is at capacity; retry shortly."),
                status_code=503,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


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
    app.state.api_keys = ApiKeys.from_sources(
        keys=settings.api_keys, keys_file=settings.api_keys_file
    )
    protected = [Depends(require_api_key)]
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
    app.add_middleware(RequestStatsMiddleware, stats=stats)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        dependencies=protected,
        responses=PREDICT_RESPONSES,
    )
    def predict(
        request: Request,
        file: Annotated[UploadFile, File(description="An audio file (WAV, FLAC, OGG, MP3, AIFF).")],
        model: Annotated[EmotionModel, Depends(get_model)],
        settings: Annotated[Settings, Depends(get_settings)],
        stats: Annotated[ServiceStats, Depends(get_stats)],
        timeline: Annotated[
            bool, Query(description="Also segment a long recording and classify each segment.")
        ] = False,
    ) -> JSONResponse:
        """Classify the emotion in one uploaded recording (with `timeline=true`, per segment)."""
        limit = settings.max_timeline_seconds if timeline else settings.max_audio_seconds
        with request.app.state.limiter:
            data = file.file.read()
            if timeline:
                # Decoded block by block: memory stays flat however long the recording.
                result = classify_with_timeline(model, data, max_duration_s=limit)
            else:
                result = classify_clip(model, data, max_duration_s=limit)
        stats.record_timing(result.timings_s)
        return prediction_response(result, model)

    @app.post(
        "/predict/raw",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        dependencies=protected,
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The audio file itself as the body (no multipart form).",
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in ("audio/*", "application/octet-stream")
                },
            }
        },
        responses=PREDICT_RESPONSES,
    )
    async def predict_raw(
        request: Request,
        model: Annotated[EmotionModel, Depends(get_model)],
        settings: Annotated[Settings, Depends(get_settings)],
        stats: Annotated[ServiceStats, Depends(get_stats)],
    ) -> JSONResponse:
        """Classify the recording sent as the raw request body (`curl --data-binary @clip.wav`).

        The same answer as `/predict` without multipart encoding: the cheaper call for
        services that post one clip at a time (about 0.5 ms less server CPU per request in
        bench/speed.py).
        """
        # The size limit is enforced while the body streams in (BodySizeLimitMiddleware).
        data = await request.body()

        def classify() -> ClipResult:
            with request.app.state.limiter:
                return classify_clip(model, data, max_duration_s=settings.max_audio_seconds)

        result = await anyio.to_thread.run_sync(classify)
        stats.record_timing(result.timings_s)
        return prediction_response(result, model)

    @app.post(
        "/predict/batch",
        response_model=BatchResponse,
        dependencies=protected,
        responses={413: {"description": "Too many files or too large a body"}},
    )
    def predict_batch(
        request: Request,
        files: Annotated[list[UploadFile], File(description="Several audio files, field `files`.")],
        model: Annotated[EmotionModel, Depends(get_model)],
        settings: Annotated[Settings, Depends(get_settings)],
        stats: Annotated[ServiceStats, Depends(get_stats)],
    ) -> dict[str, Any]:
        """Classify several recordings: one result or one error per file, in order."""
        if len(files) > settings.max_batch_files:
            raise TooManyFilesError(
                f"{len(files)} files sent; at most {settings.max_batch_files} per request."
            )
        results: list[dict[str, Any]] = []
        with request.app.state.limiter:
            for upload in files:
                item: dict[str, Any] = {"filename": upload.filename}
                try:
                    result = classify_clip(
                        model, upload.file.read(), max_duration_s=settings.max_audio_seconds
                    )
                except Exception as exc:
                    info = describe_error(exc)
                    if info is None:
                        raise
                    stats.record_error(info.kind)
                    item.update(error_body(info.code, info.detail), status=info.status)
                else:
                    stats.record_timing(result.timings_s)
                    item.update(clip_answer(result, model), status=200)
                results.append(item)
        return {"results": results}

    @app.get(
        "/metrics",
        dependencies=protected,
        responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
    )
    def metrics(request: Request, stats: Annotated[ServiceStats, Depends(get_stats)]) -> Response:
        """Model evaluation metrics and the service's own counters: JSON by default, the
        Prometheus text format for ``Accept: text/plain`` or OpenMetrics."""
        accept = request.headers.get("accept", "")
        if "application/openmetrics-text" in accept:
            return Response(generate_openmetrics(stats.registry), media_type=OPENMETRICS_TYPE)
        if "text/plain" in accept and "application/json" not in accept:
            return Response(generate_latest(stats.registry), media_type=CONTENT_TYPE_LATEST)
        model: EmotionModel | None = getattr(request.app.state, "model", None)
        body = {
            "model": None
            if model is None
            else {
                "name": model.name,
                "version": model.version,
                "labels": list(model.labels),
                "evaluation": model.metrics,
            },
            "service": stats.snapshot(),
        }
        return JSONResponse(body)

    @app.get("/v1/model", response_model=ModelInfo, dependencies=protected)
    def model_info(model: Annotated[EmotionModel, Depends(get_model)]) -> dict[str, Any]:
        """The served model's contract, training data summary and evaluation metrics."""
        info = model.info()
        card = model.path.with_suffix(".card.md")
        info["card"] = card.read_text(encoding="utf-8") if card.is_file() else None
        return info

    app.include_router(streaming_router)
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")

    # Probes are async on purpose: they must not wait for a threadpool busy with inferences.
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: the model is loaded and warmed up."""
        if getattr(request.app.state, "ready", False):
            return JSONResponse({"status": "ready", "model": request.app.state.model.version})
        return JSONResponse({"status": "not_ready"}, status_code=503)

    return app
