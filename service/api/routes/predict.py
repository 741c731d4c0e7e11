"""``POST /predict``, ``/predict/raw`` and ``/predict/batch``: classify uploaded recordings.

Every route takes an inference slot from the shared limiter, records its stage timings in the
service stats, builds its answer with :func:`service.inference.clip_answer`, and leaves errors
to :func:`service.errors.describe_error` (through the exception handlers, or per batch item).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from service.api.deps import API_KEY, LimiterDep, ModelDep, SettingsDep, StatsDep
from service.api.schemas import BatchResponse, PredictResponse
from service.errors import TooManyFilesError, describe_error, error_body
from service.inference import ClipResult, classify_clip, clip_answer
from service.model import EmotionModel
from service.timeline import classify_with_timeline

router = APIRouter(dependencies=[API_KEY])

#: The error answers both single-clip routes document.
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "API key required (when auth is on)"},
    403: {"description": "API key not valid"},
    413: {"description": "Body or audio longer than the limits"},
    415: {"description": "Not a supported audio format"},
    422: {"description": "Invalid or empty audio, no speech in it, or a missing file field"},
    503: {"description": "Overloaded or not ready"},
}


def server_timing(timings_s: dict[str, float]) -> str:
    """The ``Server-Timing`` header: each stage's duration in milliseconds."""
    return ", ".join(f"{stage};dur={1000 * seconds:.3f}" for stage, seconds in timings_s.items())


def prediction_response(result: ClipResult, model: EmotionModel) -> JSONResponse:
    """The answer of the single-clip routes, already JSON: built from plain floats and strings,
    it needs no response-model validation, which for a sync route FastAPI runs in a second
    threadpool hop (0.07 ms of the 0.55 ms the framework took per request, measured in
    process). ``PredictResponse`` still documents it, and the API tests pin the body to it."""
    return JSONResponse(
        clip_answer(result, model), headers={"Server-Timing": server_timing(result.timings_s)}
    )


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses=PREDICT_RESPONSES,
)
def predict(
    file: Annotated[UploadFile, File(description="An audio file (WAV, FLAC, OGG, MP3, AIFF).")],
    model: ModelDep,
    settings: SettingsDep,
    stats: StatsDep,
    limiter: LimiterDep,
    timeline: Annotated[
        bool, Query(description="Also segment a long recording and classify each segment.")
    ] = False,
) -> JSONResponse:
    """Classify the emotion in one uploaded recording (with `timeline=true`, per segment)."""
    limit = settings.max_timeline_seconds if timeline else settings.max_audio_seconds
    with limiter:
        data = file.file.read()
        if timeline:
            # Decoded block by block: memory stays flat however long the recording.
            result = classify_with_timeline(model, data, max_duration_s=limit)
        else:
            result = classify_clip(model, data, max_duration_s=limit)
    stats.record_timing(result.timings_s)
    return prediction_response(result, model)


@router.post(
    "/predict/raw",
    response_model=PredictResponse,
    response_model_exclude_none=True,
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
    model: ModelDep,
    settings: SettingsDep,
    stats: StatsDep,
    limiter: LimiterDep,
) -> JSONResponse:
    """Classify the recording sent as the raw request body (`curl --data-binary @clip.wav`).

    The same answer as `/predict` without multipart encoding: the cheaper call for
    services that post one clip at a time (about 0.5 ms less server CPU per request in
    bench/speed.py).
    """
    # The size limit is enforced while the body streams in (BodySizeLimitMiddleware).
    data = await request.body()

    def classify() -> ClipResult:
        with limiter:
            return classify_clip(model, data, max_duration_s=settings.max_audio_seconds)

    result = await anyio.to_thread.run_sync(classify)
    stats.record_timing(result.timings_s)
    return prediction_response(result, model)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses={413: {"description": "Too many files or too large a body"}},
)
def predict_batch(
    files: Annotated[list[UploadFile], File(description="Several audio files, field `files`.")],
    model: ModelDep,
    settings: SettingsDep,
    stats: StatsDep,
    limiter: LimiterDep,
) -> dict[str, Any]:
    """Classify several recordings: one result or one error per file, in order."""
    if len(files) > settings.max_batch_files:
        raise TooManyFilesError(
            f"{len(files)} files sent; at most {settings.max_batch_files} per request."
        )
    results: list[dict[str, Any]] = []
    with limiter:
        for upload in files:
            item: dict[str, Any] = {"filename": upload.filename}
            try:
                result = classify_clip(
                    model, upload.file.read(), max_duration_s=settings.max_audio_seconds
                )
            except Exception as exc:
                info = describe_error(exc)
                if info is None:
                    raise  # a bug: the whole request is a logged 500
                stats.record_error(info.kind)
                item.update(error_body(info.code, info.detail), status=info.status)
            else:
                stats.record_timing(result.timings_s)
                item.update(clip_answer(result, model), status=200)
            results.append(item)
    return {"results": results}
