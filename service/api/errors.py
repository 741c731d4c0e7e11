"""FastAPI exception handlers: every error becomes ``{"error": code, "detail": ...}`` JSON.

The mapping itself lives in :func:`service.errors.describe_error`, shared with the batch items,
the WebSocket and ``ser-predict``; this module only renders it for HTTP and counts it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.stats import ServiceStats
from service.audio import AudioError
from service.errors import ServiceError, describe_error, error_body
from service.features import FeatureError

log = logging.getLogger(__name__)


def _stats(request: Request) -> ServiceStats:
    stats: ServiceStats = request.app.state.stats
    return stats


async def _described(request: Request, exc: Exception) -> JSONResponse:
    """A known error (audio, features, service): its status, code and headers."""
    info = describe_error(exc)
    if info is None:  # registered only for the types describe_error knows
        return await _unexpected(request, exc)
    _stats(request).record_error(info.kind)
    headers = exc.headers if isinstance(exc, ServiceError) else None
    return JSONResponse(
        error_body(info.code, info.detail), status_code=info.status, headers=headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    _stats(request).record_error("validation")
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse(error_body("validation_error", errors), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    if exc.status_code >= 400:
        _stats(request).record_error(code)
    return JSONResponse(
        error_body(code, exc.detail), status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    _stats(request).record_error("internal")
    return JSONResponse(
        error_body("internal_error", "An internal error occurred; it has been logged."),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (its ``state.stats`` counts the errors by kind)."""
    for known in (ServiceError, AudioError, FeatureError):
        app.add_exception_handler(known, _described)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
