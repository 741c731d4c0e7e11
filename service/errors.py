"""Typed errors and their JSON answers: bad input is a clear 4xx, real bugs a logged 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.audio import AudioError, AudioTooLongError, UnsupportedFormatError
from service.features import FeatureError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error with an HTTP status and a machine-readable code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class OverloadedError(ServiceError):
    status_code = 503
    code = "overloaded"


class NotReadyError(ServiceError):
    status_code = 503
    code = "not_ready"


def error_body(code: str, detail: object) -> dict[str, object]:
    return {"error": code, "detail": detail}


def audio_status(exc: AudioError) -> int:
    if isinstance(exc, UnsupportedFormatError):
        return 415
    if isinstance(exc, AudioTooLongError):
        return 413
    return 422


def install_error_handlers(app: FastAPI) -> None:
    stats = lambda request: request.app.state.stats  # noqa: E731

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        stats(request).record_error(exc.code)
        return JSONResponse(
            error_body(exc.code, exc.detail), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(AudioError)
    async def _audio_error(request: Request, exc: AudioError) -> JSONResponse:
        stats(request).record_error(exc.reason)
        return JSONResponse(error_body(exc.reason, str(exc)), status_code=audio_status(exc))

    @app.exception_handler(FeatureError)
    async def _feature_error(request: Request, exc: FeatureError) -> JSONResponse:
        stats(request).record_error("features")
        return JSONResponse(error_body("invalid_audio", str(exc)), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        stats(request).record_error("validation")
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(error_body("validation_error", errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code >= 400:
            stats(request).record_error(code)
        return JSONResponse(
            error_body(code, exc.detail), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        stats(request).record_error("internal")
        return JSONResponse(
            error_body("internal_error", "An internal error occurred; it has been logged."),
            status_code=500,
        )
