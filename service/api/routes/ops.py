"""Operations: ``GET /metrics``, ``/v1/model``, and the probes ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from service.api.deps import API_KEY, ModelDep, StatsDep
from service.api.schemas import ModelInfo
from service.model import EmotionModel

router = APIRouter()


@router.get(
    "/metrics",
    dependencies=[API_KEY],
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
def metrics(request: Request, stats: StatsDep) -> Response:
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


@router.get("/v1/model", response_model=ModelInfo, dependencies=[API_KEY])
def model_info(model: ModelDep) -> dict[str, Any]:
    """The served model's contract, training data summary and evaluation metrics."""
    info = model.info()
    card = model.path.with_suffix(".card.md")
    info["card"] = card.read_text(encoding="utf-8") if card.is_file() else None
    return info


# Probes are async on purpose: they must not wait for a threadpool busy with inferences.
@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the model is loaded and warmed up."""
    if getattr(request.app.state, "ready", False):
        return JSONResponse({"status": "ready", "model": request.app.state.model.version})
    return JSONResponse({"status": "not_ready"}, status_code=503)
