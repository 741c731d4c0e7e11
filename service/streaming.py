"""``WebSocket /v1/stream``: emotion events over live PCM16 audio.

Protocol: the client sends one JSON text message ``{"sample_rate": 16000, "format": "pcm16"}``
(optional ``window_s``, default 2.0, and ``hop_s``, default 0.5), then binary messages of
little-endian signed 16-bit mono samples, then ``{"type": "end"}`` (or just closes). The
server sends ``{"type": "emotion", ...}`` for the latest window every hop, ``{"type":
"segment", "event": "start"|"end", "time": ...}`` when speech starts or stops, and
``{"type": "end"}`` before closing. Bad input closes the socket with code 1003 (unsupported
data) or 1007 (invalid payload) or 1008 (policy: auth, limits) and a reason.

Backpressure: one message is processed (and its inference awaited) before the next is read,
so a sender faster than the server is slowed by TCP; when a message spans several hops, only
the latest window is classified (older hops are skipped, never queued).
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import numpy as np
import soxr
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from service.audio import MIN_SOURCE_RATE
from service.auth import ApiKeys, presented_key
from service.model import EmotionModel
from service.settings import Settings

router = APIRouter()

UNSUPPORTED, INVALID, POLICY = 1003, 1007, 1008
MAX_RATE = 48_000
SPEECH_DB = -45.0  # dBFS of a 30 ms frame above which the stream counts as speech


class StreamError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _parse_config(text: str) -> tuple[int, float, float]:
    try:
        config = json.loads(text)
        rate = int(config["sample_rate"])
        window_s = float(config.get("window_s", 2.0))
        hop_s = float(config.get("hop_s", 0.5))
        fmt = config.get("format", "pcm16")
    except (ValueError, KeyError, TypeError) as exc:
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


def _authorised(websocket: WebSocket) -> bool:
    keys: ApiKeys = websocket.app.state.api_keys
    if not keys.enabled:
        return True
    # Browsers cannot set headers on a WebSocket, hence the query parameter as well.
    key = presented_key(websocket) or websocket.query_params.get("api_key")
    return key is not None and keys.accepts(key)


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        if not _authorised(websocket):
            raise StreamError(POLICY, "a valid API key is required")
        model: EmotionModel | None = getattr(websocket.app.state, "model", None)
        if model is None or not websocket.app.state.ready:
            raise StreamError(1013, "not ready")  # try again later
        settings: Settings = websocket.app.state.settings
        with anyio.fail_after(10):
            rate, window_s, hop_s = _parse_config(await websocket.receive_text())
        await _run(websocket, model, settings, rate=rate, window_s=window_s, hop_s=hop_s)
    except StreamError as exc:
        await websocket.close(code=exc.code, reason=exc.reason[:120])
    except TimeoutError:
        await websocket.close(code=POLICY, reason="no configuration message within 10 s")
    except WebSocketDisconnect:
        return


class _Session:
    """The state of one stream: a window of audio at the model's rate, counters, VAD state."""

    def __init__(
        self,
        websocket: WebSocket,
        model: EmotionModel,
        settings: Settings,
        *,
        rate: int,
        window_s: float,
        hop_s: float,
    ) -> None:
        self.websocket, self.model = websocket, model
        self.target = model.feature_set.sample_rate
        self.resampler = (
            None
            if rate == self.target
            else soxr.ResampleStream(rate, self.target, 1, dtype="float32")
        )
        self.window, self.hop = int(window_s * self.target), int(hop_s * self.target)
        self.frame = int(0.03 * self.target)
        self.buffer = np.zeros(0, dtype=np.float32)  # at most one window
        self.received = 0  # samples at the model's rate since the start
        self.next_event = self.window
        self.in_speech, self.speech_run, self.silence_run = False, 0, 0
        self.max_samples = int(settings.max_timeline_seconds * self.target)
        self.limit_s = settings.max_timeline_seconds

    async def feed(self, chunk: np.ndarray, *, arrived: float, last: bool = False) -> None:
        if self.resampler is not None:
            chunk = self.resampler.resample_chunk(chunk, last=last)
        self.received += chunk.shape[0]
        if self.received > self.max_samples:
            raise StreamError(POLICY, f"stream longer than {self.limit_s:g} s")
        self.buffer = np.concatenate([self.buffer, chunk])[-self.window :]
        await self._segments(chunk)
        if self.received >= self.next_event:
            await self._emotion(arrived)
            # Skip hops we are behind on rather than queueing them.
            while self.next_event <= self.received:
                self.next_event += self.hop

    async def _segments(self, chunk: np.ndarray) -> None:
        """Speech start and end from 30 ms frames of the new audio."""
        frame = self.frame
        for start in range(0, chunk.shape[0] - frame + 1, frame):
            level = 10 * np.log10(np.mean(chunk[start : start + frame] ** 2) + 1e-12)
            if level > SPEECH_DB:
                self.speech_run, self.silence_run = self.speech_run + 1, 0
            else:
                self.speech_run, self.silence_run = 0, self.silence_run + 1
            t = (self.received - chunk.shape[0] + start) / self.target
            if not self.in_speech and self.speech_run >= 5:
                self.in_speech = True
                event = {"type": "segment", "event": "start", "time": round(t - 0.12, 3)}
                await self.websocket.send_json(event)
            elif self.in_speech and self.silence_run >= 10:
                self.in_speech = False
                event = {"type": "segment", "event": "end", "time": round(t - 0.27, 3)}
                await self.websocket.send_json(event)

    async def _emotion(self, arrived: float) -> None:
        model, samples = self.model, self.buffer.copy()
        probs = await anyio.to_thread.run_sync(
            lambda: model.predict_proba(model.feature_set.extract(samples))[0]
        )
        prediction = model.to_prediction(probs)
        event: dict[str, Any] = {
            "type": "emotion",
            "start": round((self.received - samples.shape[0]) / self.target, 3),
            "end": round(self.received / self.target, 3),
            "label": prediction.label,
            "confidence": prediction.confidence,
            "probabilities": prediction.probabilities,
            # From the arrival of the message holding the window's last sample to this event.
            "latency_ms": round(1000 * (time.perf_counter() - arrived), 3),
        }
        await self.websocket.send_json(event)


async def _run(
    websocket: WebSocket,
    model: EmotionModel,
    settings: Settings,
    *,
    rate: int,
    window_s: float,
    hop_s: float,
) -> None:
    session = _Session(websocket, model, settings, rate=rate, window_s=window_s, hop_s=hop_s)
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            try:
                is_end = json.loads(message["text"] or "{}").get("type") == "end"
            except (ValueError, AttributeError):
                is_end = False
            if not is_end:
                raise StreamError(
                    INVALID, "text messages other than {'type': 'end'} are not allowed"
                )
            # Flush what the resampler still holds; it may complete a last window.
            await session.feed(
                np.zeros(0, dtype=np.float32), arrived=time.perf_counter(), last=True
            )
            duration = round(session.received / session.target, 3)
            await websocket.send_json({"type": "end", "duration_s": duration})
            await websocket.close(code=1000, reason="end of stream")
            return
        payload: bytes = message.get("bytes") or b""
        if len(payload) % 2:
            raise StreamError(INVALID, "binary messages must hold whole 16-bit samples")
        chunk = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
        await session.feed(chunk, arrived=time.perf_counter())
