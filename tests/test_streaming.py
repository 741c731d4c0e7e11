"""WebSocket streaming: events per hop, segments, clean closes, a real client in real time."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.app import create_app
from service.settings import Settings
from tests.helpers import tone


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def speech_with_pause(rate: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    quiet = (0.0005 * rng.standard_normal(int(1.0 * rate))).astype(np.float32)
    return np.concatenate(
        [tone(seconds=2.0, rate=rate), quiet, tone(freq=300.0, seconds=2.0, rate=rate)]
    )


def collect(ws) -> list[dict]:
    events = []
    while True:
        event = ws.receive_json()
        events.append(event)
        if event["type"] == "end":
            return events


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_stream_faster_than_real_time(client: TestClient, rate: int) -> None:
    audio = speech_with_pause(rate)  # 5 s
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(
            json.dumps({"sample_rate": rate, "format": "pcm16", "window_s": 2.0, "hop_s": 0.5})
        )
        chunk = rate // 10
        for start in range(0, audio.size, chunk):
            ws.send_bytes(pcm16(audio[start : start + chunk]))
        ws.send_text(json.dumps({"type": "end"}))
        events = collect(ws)
    emotions = [e for e in events if e["type"] == "emotion"]
    assert len(emotions) == 7  # windows ending at 2.0, 2.5, ..., 5.0 s
    # The resampler's latency shifts a 44.1 kHz stream by a few ms, never by a hop.
    assert [e["end"] for e in emotions] == pytest.approx([2.0 + 0.5 * i for i in range(7)], abs=0.1)
    for e in emotions:
        assert e["end"] - e["start"] == pytest.approx(2.0, abs=0.02)
        assert sum(e["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    segments = [(e["event"], e["time"]) for e in events if e["type"] == "segment"]
    assert [s[0] for s in segments] == ["start", "end", "start"]
    assert segments[1][1] == pytest.approx(2.0, abs=0.2) and segments[2][1] == pytest.approx(
        3.0, abs=0.2
    )
    assert events[-1] == {"type": "end", "duration_s": pytest.approx(5.0, abs=0.01)}


@pytest.mark.parametrize(
    ("first", "payload", "code"),
    [
        ("not json", None, 1007),
        (json.dumps({"sample_rate": 16_000, "format": "mp3"}), None, 1003),
        (json.dumps({"sample_rate": 500}), None, 1003),
        (json.dumps({"sample_rate": 16_000}), b"\x01\x02\x03", 1007),
    ],
)
def test_bad_input_closes_with_a_reason(
    client: TestClient, first: str, payload: bytes | None, code: int
) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(first)
        if payload is not None:
            ws.send_bytes(payload)
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == code and info.value.reason


def test_stream_respects_auth(settings: Settings) -> None:
    secure = settings.model_copy(update={"api_keys": "k1"})
    with TestClient(create_app(secure)) as client:
        with (
            client.websocket_connect("/v1/stream") as ws,
            pytest.raises(WebSocketDisconnect) as info,
        ):
            ws.receive_json()
        assert info.value.code == 1008
        with client.websocket_connect("/v1/stream?api_key=k1") as ws:
            ws.send_text(json.dumps({"sample_rate": 16_000}))
            ws.send_text(json.dumps({"type": "end"}))
            assert ws.receive_json()["type"] == "end"


def test_real_client_in_real_time(tiny_model: Path) -> None:
    import websockets

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(model_path=tiny_model)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    async def run() -> list[dict]:
        audio = tone(seconds=3.0)
        events: list[dict] = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/stream") as ws:
            await ws.send(json.dumps({"sample_rate": 16_000, "window_s": 1.0, "hop_s": 0.5}))
            chunk = 1600  # 100 ms, sent at the pace of speech
            for start in range(0, audio.size, chunk):
                await ws.send(pcm16(audio[start : start + chunk]))
                await asyncio.sleep(0.1)
                while True:
                    try:
                        events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=0.001)))
                    except TimeoutError:
                        break
            await ws.send(json.dumps({"type": "end"}))
            async for message in ws:
                events.append(json.loads(message))
        return events

    try:
        events = asyncio.run(run())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    emotions = [e for e in events if e["type"] == "emotion"]
    assert len(emotions) == 5  # windows ending at 1.0, 1.5, ..., 3.0 s
    # Timing is measured by bench/stream_latency.py, not asserted here.
    assert all(e["latency_ms"] > 0 for e in emotions)
    assert events[-1]["type"] == "end"
