"""Typed errors and what they mean to a client, independent of the transport.

Every entry point (the HTTP handlers, each item of ``/predict/batch``, the WebSocket's close
reasons, ``ser-predict`` records) turns an exception into an answer through
:func:`describe_error`, so one input gets the same status, code and detail everywhere. Bad input
is a clear 4xx; anything :func:`describe_error` does not know is a bug (a logged 500).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.audio import AudioError, AudioTooLongError, UnsupportedFormatError
from service.features import FeatureError


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


class TooManyFilesError(ServiceError):
    status_code = 413
    code = "too_many_files"


class NoSpeechError(ServiceError):
    """The speech detector (:mod:`service.vad`) found no speech: there is no emotion to give.

    Parameters
    ----------
    duration_s : float
        Length of the audio that was searched, in seconds (it is in the detail).
    """

    status_code = 422
    code = "no_speech"

    def __init__(self, duration_s: float) -> None:
        super().__init__(f"No speech found in {duration_s:.2f} s of audio.")
        self.duration_s = duration_s


@dataclass(frozen=True)
class ErrorInfo:
    """What a client is told about a failure.

    Attributes
    ----------
    status : int
        The HTTP status (a batch item's ``status``; the WebSocket maps it to a close code).
    code : str
        Machine-readable, the ``error`` field of an answer.
    detail : str
        A sentence for people, the ``detail`` field.
    kind : str
        The key ``/metrics`` counts it under in ``errors``: the code, except for feature
        errors, which have always been counted as ``features``.
    """

    status: int
    code: str
    detail: str
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.code)


def describe_error(exc: BaseException) -> ErrorInfo | None:
    """The client-facing status, code and detail of ``exc``; ``None`` when it is a bug.

    Parameters
    ----------
    exc : BaseException
        Raised while serving a request.

    Returns
    -------
    ErrorInfo or None
        :class:`service.audio.AudioError`: 415 for an unsupported format, 413 for audio over
        the length limit, 422 otherwise, with the error's ``reason`` as code.
        :class:`service.features.FeatureError`: 422 ``invalid_audio``. :class:`ServiceError`:
        its own status and code. Anything else: ``None``.
    """
    if isinstance(exc, ServiceError):
        return ErrorInfo(exc.status_code, exc.code, exc.detail)
    if isinstance(exc, AudioError):
        return ErrorInfo(audio_status(exc), exc.reason, str(exc))
    if isinstance(exc, FeatureError):
        return ErrorInfo(422, "invalid_audio", str(exc), kind="features")
    return None


def audio_status(exc: AudioError) -> int:
    """The HTTP status of unusable audio: 415, 413 or 422."""
    if isinstance(exc, UnsupportedFormatError):
        return 415
    if isinstance(exc, AudioTooLongError):
        return 413
    return 422


def error_body(code: str, detail: object) -> dict[str, object]:
    """The JSON body of every error answer: ``{"error": code, "detail": detail}``."""
    return {"error": code, "detail": detail}
