"""``WebSocket /v1/stream``: emotion events over live PCM16 audio.

Protocol: the client sends one JSON text message ``{"sample_rate": 16000, "format": "pcm16"}``
(optional ``window_s``, 0.5-10, default 2.0, and ``hop_s``, 0.1-``window_s``, default 0.5)
within ``SER_STREAM_CONFIG_TIMEOUT_S``, then binary messages of little-endian signed 16-bit mono
samples, then ``{"type": "end"}`` (or just closes). Every hop, the server sends one event about
the latest window: ``{"type": "emotion", "start", "end", "label", "confidence", "probabilities",
"speech_s", "latency_ms"}`` when the window holds speech, ``{"type": "no_speech", "start",
"end"}`` when it holds none, or ``{"type": "skipped", ...}`` under overload (below). It also
sends ``{"type": "segment", "event": "start"|"end", "time": ...}`` when speech starts or stops,
and ``{"type": "end"}`` before closing. Bad input closes the socket
with code 1003 (unsupported data) or 1007 (invalid payload) or 1008 (policy: auth, limits) and
a reason; 1013 (try again later) before the model is ready.

Speech comes from the one detector, :mod:`service.vad`. A window holds speech when the detector
finds speech in it, exactly as ``POST /predict`` of the window's audio would answer rather than
refuse with 422 ``no_speech``: silence, noise or a hum between utterances gets ``no_speech``,
never an emotion. The event is sent all the same, so a client keeps one event per hop and can
clear a live display instead of leaving the last emotion on it; it is not counted as an error
(pauses are normal in a stream), and the window costs no feature extraction. Segments come
from :class:`service.vad.StreamingVad`, the timeline's detector judging each frame as it
arrives: a segment's ``start`` is sent once it holds enough voiced speech (about 0.1 s), its
``end`` once a gap too long to bridge has passed (0.3 s), both with the timeline's padding; a
segment still open at the end of the stream ends with it. The times are those
``POST /predict?timeline=true`` finds in the same audio.

The stream obeys the same rules as the HTTP routes: each hop's inference takes a slot of the
worker's shared in-flight limiter (``SER_MAX_INFLIGHT``), its stage timings and errors go to the
service stats, and its connection is counted under ``/v1/stream`` by close code.

Overload: when every slot is taken, the hop is skipped and the client gets
``{"type": "skipped", "start", "end", "error": "overloaded", "detail"}`` instead of an emotion
event; the stream stays open and the next hop tries again. A live stream is a sequence of
estimates of the latest window, so a missing estimate is what a client already sees when it
sends faster than the server keeps up; closing would throw away the session (its window and
speech state) for a load spike that a skipped hop absorbs. The skip is counted as an ``overloaded``
error.

Backpressure: one message is processed (and its inference awaited) before the next is read,
so a sender faster than the server is slowed by TCP; when a message spans several hops, only
the latest window is classified (older hops are skipped, never queued).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import soxr
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from service.api.auth import ApiKeys, check_api_key, presented_key
from service.api.deps import LimiterDep, SettingsDep, StatsDep, ready_model
from service.api.limiter import InflightLimiter
from service.api.stats import ServiceStats
from service.audio import MIN_SOURCE_RATE
from service.errors import ErrorInfo, NoSpeechError, OverloadedError, describe_error
from service.inference import classify_samples, prediction_fields
from service.model import EmotionModel, Prediction
from service.settings import Settings
from service.vad import SegmentEvent, StreamingVad

log = logging.getLogger(__name__)

router = APIRouter()

UNSUPPORTED, INVALID, POLICY, TOO_BIG, INTERNAL, TRY_LATER = 1003, 1007, 1008, 1009, 1011, 1013
MAX_RATE = 48_000
#: WebSocket close reasons are at most 123 bytes.
MAX_REASON = 120


class StreamError(Exception):
    """Ends a stream: the close code, its reason, and the kind the stats count it under."""

    def __init__(self, code: int, reason: str, *, kind: str = "invalid_stream") -> None:
        super().__init__(reason)
        self.code, self.reason, self.kind = code, reason, kind


def close_code(info: ErrorInfo) -> int:
    """The WebSocket close code of an error the HTTP routes would answer with ``info.status``."""
    return {
        401: POLICY,
        403: POLICY,
        413: TOO_BIG,
        415: UNSUPPORTED,
        422: INVALID,
        503: TRY_LATER,
    }.get(info.status, POLICY)


def _parse_config(text: str) -> tuple[int, float, float]:
    try:
        config = json.loads(text)
        rate = int(config["sample_rate"])
        window_s = float(config.get("window_s", 2.0))
        hop_s = float(config.get("hop_s", 0.5))
        fmt = config.get("format", "pcm16")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StreamError(INVALID, f"first message must be JSON with sample_rate: {exc}") from exc
    if fmt != "pcm16":
        raise StreamError(
            UNSUPPORTED, "only format 'pcm16' (signed 16-bit little-endian) is supported"
        )
    if not MIN_SOURCE_RATE <= rate <= MAX_RATE:
        raise StreamError(UNSUPPORTED, f"sample_rate must be {MIN_SOURCE_RATE}-{MAX_RATE} Hz")
    if not (0.5 <= window_s <= 10.0 and 0.1 <= hop_s <= window_s):
        raise StreamError(INVALID, "need 0.5 <= window_s <= 10 and 0.1 <= hop_s <= window_s")
    return rate, window_s, hop_s


async def _read_config(websocket: WebSocket, timeout: float) -> tuple[int, float, float]:
    """The first message: sample rate, window and hop, within ``timeout`` seconds."""
    try:
        with anyio.fail_after(timeout):
            message = await websocket.receive()
    except TimeoutError as exc:
        reason = f"no configuration message within {timeout:g} s"
        raise StreamError(POLICY, reason, kind="stream_config_timeout") from exc
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise StreamError(INVALID, "the first message must be JSON text with sample_rate")
    return _parse_config(text)


def _authorise(websocket: WebSocket) -> None:
    """The HTTP routes' key check; browsers cannot set headers on a WebSocket, hence
    ``?api_key=`` as well."""
    keys: ApiKeys = websocket.app.state.api_keys
    check_api_key(keys, presented_key(websocket) or websocket.query_params.get("api_key"))


@router.websocket("/v1/stream")
async def stream(
    websocket: WebSocket, settings: SettingsDep, stats: StatsDep, limiter: LimiterDep
) -> None:
    await websocket.accept()
    try:
        await _serve(websocket, settings, stats, limiter)
    except StreamError as exc:
        stats.record_error(exc.kind)
        reason = exc.reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore")
        await websocket.close(code=exc.code, reason=reason)
    except WebSocketDisconnect:
        return


async def _serve(
    websocket: WebSocket, settings: Settings, stats: ServiceStats, limiter: InflightLimiter
) -> None:
    """Check the key and readiness, read the configuration, run the session.

    Raises :class:`StreamError` for every way a stream can fail: the errors the HTTP routes
    share (:func:`service.errors.describe_error`) are turned into close codes here.
    """
    try:
        _authorise(websocket)
        model = ready_model(websocket)
        rate, window_s, hop_s = await _read_config(websocket, settings.stream_config_timeout_s)
        session = _Session(
            websocket, model, settings, stats, limiter, rate=rate, window_s=window_s, hop_s=hop_s
        )
        await session.run()
    except (StreamError, WebSocketDisconnect):
        raise
    except Exception as exc:
        info = describe_error(exc)
        if info is None:
            log.exception("unhandled error on the stream")
            raise StreamError(
                INTERNAL, "internal error; it has been logged", kind="internal"
            ) from exc
        raise StreamError(close_code(info), info.detail, kind=info.kind) from exc


class _Session:
    """The state of one stream: a window of audio at the model's rate, hop counter, VAD."""

    def __init__(
        self,
        websocket: WebSocket,
        model: EmotionModel,
        settings: Settings,
        stats: ServiceStats,
        limiter: InflightLimiter,
        *,
        rate: int,
        window_s: float,
        hop_s: float,
    ) -> None:
        self.websocket, self.model, self.stats, self.limiter = websocket, model, stats, limiter
        self.target = model.feature_set.sample_rate
        self.resampler = (
            None
            if rate == self.target
            else soxr.ResampleStream(rate, self.target, 1, dtype="float32")
        )
        self.window, self.hop = int(window_s * self.target), int(hop_s * self.target)
        self.buffer = np.zeros(0, dtype=np.float32)  # at most one window
        self.received = 0  # samples at the model's rate since the start
        self.next_event = self.window
        self.vad = StreamingVad(self.target)
        self.max_samples = int(settings.max_timeline_seconds * self.target)
        self.limit_s = settings.max_timeline_seconds

    async def run(self) -> None:
        """Read messages until the client ends the stream or leaves."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await self._end(message["text"])
                return
            payload: bytes = message.get("bytes") or b""
            if len(payload) % 2:
                raise StreamError(INVALID, "binary messages must hold whole 16-bit samples")
            chunk = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
            await self.feed(chunk, arrived=time.perf_counter())

    async def _end(self, text: str) -> None:
        try:
            is_end = json.loads(text or "{}").get("type") == "end"
        except (ValueError, AttributeError):
            is_end = False
        if not is_end:
            raise StreamError(INVALID, "text messages other than {'type': 'end'} are not allowed")
        # Flush what the resampler still holds; it may complete a last window.
        await self.feed(np.zeros(0, dtype=np.float32), arrived=time.perf_counter(), last=True)
        await self._segments(self.vad.finish())
        duration = round(self.received / self.target, 3)
        await self.websocket.send_json({"type": "end", "duration_s": duration})
        await self.websocket.close(code=1000, reason="end of stream")

    async def feed(self, chunk: np.ndarray, *, arrived: float, last: bool = False) -> None:
        if self.resampler is not None:
            chunk = self.resampler.resample_chunk(chunk, last=last)
        self.received += chunk.shape[0]
        if self.received > self.max_samples:
            raise StreamError(
                POLICY, f"stream longer than {self.limit_s:g} s", kind="stream_too_long"
            )
        self.buffer = np.concatenate([self.buffer, chunk])[-self.window :]
        await self._segments(self.vad.push(chunk))
        if self.received >= self.next_event:
            await self._emotion(arrived)
            # Skip hops we are behind on rather than queueing them.
            while self.next_event <= self.received:
                self.next_event += self.hop

    async def _segments(self, events: list[SegmentEvent]) -> None:
        for event in events:
            time_s = round(event.sample / self.target, 3)
            await self.websocket.send_json(
                {"type": "segment", "event": event.event, "time": time_s}
            )

    async def _emotion(self, arrived: float) -> None:
        model, samples = self.model, self.buffer.copy()
        span = {
            "start": round((self.received - samples.shape[0]) / self.target, 3),
            "end": round(self.received / self.target, 3),
        }

        def infer() -> tuple[Prediction, float, dict[str, float]] | None:
            t0 = time.perf_counter()
            try:
                prediction, speech_s, timings = classify_samples(model, samples)
            except NoSpeechError:
                return None
            return prediction, speech_s, {**timings, "total": time.perf_counter() - t0}

        try:
            # Taken on the event loop, so a refused hop costs no thread hop.
            with self.limiter:
                outcome = await anyio.to_thread.run_sync(infer)
        except OverloadedError as exc:
            self.stats.record_error(exc.code)
            skipped = {"type": "skipped", **span, "error": exc.code, "detail": exc.detail}
            await self.websocket.send_json(skipped)
            return
        if outcome is None:
            await self.websocket.send_json({"type": "no_speech", **span})
            return
        prediction, speech_s, timings = outcome
        self.stats.record_timing(timings)
        event: dict[str, Any] = {
            "type": "emotion",
            **span,
            **prediction_fields(prediction),
            "speech_s": round(speech_s, 3),
            # From the arrival of the message holding the window's last sample to this event.
            "latency_ms": round(1000 * (time.perf_counter() - arrived), 3),
        }
        await self.websocket.send_json(event)
