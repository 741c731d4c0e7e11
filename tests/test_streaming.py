"""WebSocket streaming: events per hop, segments as the timeline finds them, clean closes,
limits, auth, stats, and a real client in real time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from service.api import create_app
from service.settings import Settings
from service.vad import speech_seconds, speech_segments
from tests.helpers import coloured_noise, encode, hum, serve_in_thread, speech_like

RATE = 16_000


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def quiet(seconds: float, rate: int, *, level: float = 0.0005, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(seconds * rate))).astype(np.float32)


def speech_with_pause(rate: int) -> np.ndarray:
    """5 s: 1 s of quiet, 2 s of voice-like sound, 1 s of quiet, 1 s of voice-like sound
    running to the end."""
    return np.concatenate(
        [
            quiet(1.0, rate, seed=1),
            speech_like(seconds=2.0, rate=rate),
            quiet(1.0, rate),
            speech_like(freq=300.0, seconds=1.0, rate=rate, seed=1),
        ]
    )


def config(**overrides: object) -> str:
    return json.dumps({"sample_rate": RATE, "format": "pcm16", **overrides})


def collect(ws) -> list[dict]:
    events = []
    while True:
        event = ws.receive_json()
        events.append(event)
        if event["type"] == "end":
            return events


def stream_through(client: TestClient, audio: np.ndarray, *, rate: int = RATE, **options) -> list:
    """Send ``audio`` in 100 ms messages as fast as possible; every event until ``end``."""
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"sample_rate": rate, "format": "pcm16", **options}))
        chunk = rate // 10
        for start in range(0, audio.size, chunk):
            ws.send_bytes(pcm16(audio[start : start + chunk]))
        ws.send_text(json.dumps({"type": "end"}))
        return collect(ws)


def closed_with(ws) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_json()
    return info.value


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_stream_faster_than_real_time(client: TestClient, rate: int) -> None:
    audio = speech_with_pause(rate)  # 5 s
    events = stream_through(client, audio, rate=rate, window_s=2.0, hop_s=0.5)
    emotions = [e for e in events if e["type"] == "emotion"]
    assert len(emotions) == 7  # windows ending at 2.0, 2.5, ..., 5.0 s
    # The resampler's latency shifts a 44.1 kHz stream by a few ms, never by a hop.
    assert [e["end"] for e in emotions] == pytest.approx([2.0 + 0.5 * i for i in range(7)], abs=0.1)
    for e in emotions:
        assert e["end"] - e["start"] == pytest.approx(2.0, abs=0.02)
        assert 0.0 < e["speech_s"] <= 2.0
        assert sum(e["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert e["label"] == max(e["probabilities"], key=e["probabilities"].get)
        assert e["confidence"] == e["probabilities"][e["label"]]
    segments = [(e["event"], e["time"]) for e in events if e["type"] == "segment"]
    assert [s[0] for s in segments] == ["start", "end", "start", "end"]
    # The bursts, with the timeline's 0.1 s of padding; the last ends with the stream.
    expected = [0.9, 3.1, 3.9, 5.0]
    assert [s[1] for s in segments] == pytest.approx(expected, abs=0.05)
    assert events[-1] == {"type": "end", "duration_s": pytest.approx(5.0, abs=0.01)}


def test_windows_without_speech_get_no_speech_events(client: TestClient) -> None:
    # 1 s of speech, 3 s of quiet, 1 s of speech; 1 s windows every 0.5 s.
    audio = np.concatenate(
        [speech_like(seconds=1.0), quiet(3.0, RATE, seed=2), speech_like(seconds=1.0, seed=3)]
    )
    events = stream_through(client, audio, window_s=1.0, hop_s=0.5)
    hops = [e for e in events if e["type"] in ("emotion", "no_speech")]
    # One event per hop, windows ending at 1.0, 1.5, ..., 5.0 s.
    assert [e["end"] for e in hops] == pytest.approx([1.0 + 0.5 * i for i in range(9)], abs=0.01)
    for e in hops:
        # Speech is what /predict would find in the same window: the detector, run on it.
        window = audio[round(e["start"] * RATE) : round(e["end"] * RATE)]
        found = speech_segments(window, sample_rate=RATE)
        assert (e["type"] == "emotion") == bool(found), e
        if e["type"] == "emotion":
            assert e["speech_s"] == pytest.approx(speech_seconds(found, sample_rate=RATE))
        else:
            assert set(e) == {"type", "start", "end"}
    kinds = [e["type"] for e in hops]
    assert kinds[0] == kinds[-1] == "emotion" and "no_speech" in kinds
    # A window of quiet alone: 2.5 -> 3.5 s.
    assert next(e for e in hops if e["end"] == 3.5)["type"] == "no_speech"
    # Pauses are not errors, and cost no feature extraction.
    service = client.get("/metrics").json()["service"]
    assert service["errors"] == {}
    assert service["latency_ms"]["features"]["count"] == kinds.count("emotion")


@pytest.mark.parametrize(
    "audio",
    [
        np.zeros(3 * RATE, dtype=np.float32),
        coloured_noise(seconds=3.0, level_db=-20.0),
        coloured_noise(exponent=2.0, seconds=3.0, level_db=-20.0),
        hum(seconds=3.0),
    ],
    ids=["silence", "white noise", "brown noise", "hum"],
)
def test_a_stream_without_speech_gets_no_emotion(client: TestClient, audio: np.ndarray) -> None:
    events = stream_through(client, audio, window_s=1.0, hop_s=0.5)
    assert [e["type"] for e in events] == ["no_speech"] * 5 + ["end"]


def _recording() -> np.ndarray:
    """20 s: faint noise (under the detector's level), bursts of several loudnesses, a gap
    short enough to bridge, a blip too short to keep (two frames), long pauses."""
    rng = np.random.default_rng(7)
    y = (0.0005 * rng.standard_normal(20 * RATE)).astype(np.float32)
    bursts = [(1.2, 3.0, 0.05), (3.2, 4.4, 0.2), (6.0, 6.06, 0.3), (8.0, 11.5, 0.1), (14, 19, 0.4)]
    for i, (start, end, amplitude) in enumerate(bursts):
        burst = speech_like(freq=140.0 + 40 * i, seconds=end - start, amplitude=amplitude, seed=i)
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y


def test_stream_segments_agree_with_the_timeline(client: TestClient) -> None:
    y = _recording()
    timeline = client.post("/predict?timeline=true", files={"file": ("r.wav", encode(y))})
    assert timeline.status_code == 200, timeline.text
    expected = [(s["start"], s["end"]) for s in timeline.json()["timeline"]["segments"]]
    assert len(expected) == 3  # the bridged pair, the long burst, the last one; no blip
    events = stream_through(client, y, window_s=2.0, hop_s=1.0)
    boundaries = [(e["event"], e["time"]) for e in events if e["type"] == "segment"]
    assert [b[0] for b in boundaries] == ["start", "end"] * len(expected)
    starts, ends = boundaries[0::2], boundaries[1::2]
    frame = 0.03
    for (start, end), (_, got_start), (_, got_end) in zip(expected, starts, ends, strict=True):
        assert got_start == pytest.approx(start, abs=3 * frame)
        assert got_end == pytest.approx(end, abs=3 * frame)


@pytest.mark.parametrize(
    ("first", "payload", "code"),
    [
        ("not json", None, 1007),
        ("[1, 2]", None, 1007),
        (json.dumps({"sample_rate": 16_000, "format": "mp3"}), None, 1003),
        (json.dumps({"sample_rate": 500}), None, 1003),
        (json.dumps({"sample_rate": 96_000}), None, 1003),
        (json.dumps({"sample_rate": 16_000}), b"\x01\x02\x03", 1007),
        (None, b"\x00\x00", 1007),  # audio before the configuration
        (json.dumps({"sample_rate": 16_000}), "more text", 1007),
    ],
)
def test_bad_input_closes_with_a_reason(
    client: TestClient, first: str | None, payload: bytes | str | None, code: int
) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        if first is not None:
            ws.send_text(first)
        if isinstance(payload, bytes):
            ws.send_bytes(payload)
        elif payload is not None:
            ws.send_text(payload)
        closed = closed_with(ws)
    assert closed.code == code and closed.reason
    assert client.get("/metrics").json()["service"]["errors"] == {"invalid_stream": 1}


@pytest.mark.parametrize(
    ("window_s", "hop_s", "accepted"),
    [
        (0.5, 0.1, True),  # both at their lower bounds
        (10.0, 10.0, True),  # both at their upper bounds
        (0.49, 0.1, False),
        (10.01, 1.0, False),
        (1.0, 0.09, False),
        (1.0, 1.01, False),  # a hop longer than the window
    ],
)
def test_window_and_hop_bounds(
    client: TestClient, window_s: float, hop_s: float, accepted: bool
) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text(config(window_s=window_s, hop_s=hop_s))
        if accepted:
            ws.send_bytes(pcm16(speech_like(seconds=0.6)))
            ws.send_text(json.dumps({"type": "end"}))
            events = collect(ws)
            assert len([e for e in events if e["type"] == "emotion"]) == (window_s <= 0.6)
        else:
            closed = closed_with(ws)
            assert closed.code == 1007 and "window_s" in closed.reason


@pytest.fixture
def stream_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A client of an app with the settings overrides given by ``indirect`` parametrisation."""
    overrides = getattr(request, "param", {})
    app = create_app(settings.model_copy(update=overrides))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _stream_stats(client: TestClient, headers: dict[str, str] | None = None) -> dict:
    service = client.get("/metrics", headers=headers or {}).json()["service"]
    return {"requests": service["requests"].get("/v1/stream"), "errors": service["errors"]}


@pytest.mark.parametrize("stream_client", [{"stream_config_timeout_s": 0.2}], indirect=True)
def test_a_silent_client_is_closed_after_the_config_timeout(stream_client: TestClient) -> None:
    with stream_client.websocket_connect("/v1/stream") as ws:
        closed = closed_with(ws)
    assert closed.code == 1008 and "0.2 s" in closed.reason
    stats = _stream_stats(stream_client)
    assert stats["requests"] == {"1008": 1}
    assert stats["errors"] == {"stream_config_timeout": 1}


@pytest.mark.parametrize("stream_client", [{"max_timeline_seconds": 1.0}], indirect=True)
def test_a_stream_over_the_length_limit_is_closed(stream_client: TestClient) -> None:
    with stream_client.websocket_connect("/v1/stream") as ws:
        ws.send_text(config(window_s=0.5))
        ws.send_bytes(pcm16(speech_like(seconds=0.9)))
        first = ws.receive_json()
        assert first == {"type": "segment", "event": "start", "time": 0.0}
        assert ws.receive_json()["type"] == "emotion"  # the first window fits
        ws.send_bytes(pcm16(speech_like(seconds=0.2)))
        closed = closed_with(ws)
    assert closed.code == 1008 and "longer than 1 s" in closed.reason
    assert _stream_stats(stream_client)["errors"] == {"stream_too_long": 1}


@pytest.mark.parametrize("stream_client", [{"api_keys": "k1,k2"}], indirect=True)
def test_stream_respects_auth(stream_client: TestClient) -> None:
    def opens(url: str = "/v1/stream", headers: dict[str, str] | None = None) -> bool:
        with stream_client.websocket_connect(url, headers=headers or {}) as ws:
            ws.send_text(config())
            ws.send_text(json.dumps({"type": "end"}))
            return ws.receive_json()["type"] == "end"

    assert opens("/v1/stream?api_key=k1")  # browsers cannot set headers on a WebSocket
    assert opens(headers={"X-API-Key": "k2"})
    assert opens(headers={"Authorization": "Bearer k1"})
    reasons = {}
    for case, headers in {"missing": {}, "wrong": {"X-API-Key": "nope"}}.items():
        with stream_client.websocket_connect("/v1/stream", headers=headers) as ws:
            closed = closed_with(ws)
        assert closed.code == 1008
        reasons[case] = closed.reason
    assert "required" in reasons["missing"] and "not valid" in reasons["wrong"]
    stats = _stream_stats(stream_client, {"X-API-Key": "k1"})
    assert stats["requests"] == {"1000": 3, "1008": 2}
    assert stats["errors"] == {"unauthorized": 1, "forbidden": 1}


def test_not_ready_closes_with_try_again_later(settings: Settings) -> None:
    client = TestClient(create_app(settings))  # no `with`: the lifespan has not run
    with client.websocket_connect("/v1/stream") as ws:
        closed = closed_with(ws)
    assert closed.code == 1013 and "not loaded" in closed.reason


def test_streams_count_in_the_service_stats(client: TestClient) -> None:
    events = stream_through(client, speech_like(seconds=3.0), window_s=1.0, hop_s=0.5)
    emotions = [e for e in events if e["type"] == "emotion"]
    assert len(emotions) == 5
    service = client.get("/metrics").json()["service"]
    assert service["requests"]["/v1/stream"] == {"1000": 1}
    # Each hop's features and inference are timed like a request's.
    assert service["latency_ms"]["features"]["count"] == 5
    assert service["latency_ms"]["inference"]["count"] == 5
    prometheus = client.get("/metrics", headers={"Accept": "text/plain"}).text
    assert 'ser_requests_total{route="/v1/stream",status="1000"} 1.0' in prometheus


def test_real_client_in_real_time(tiny_model: Path) -> None:
    import websockets

    async def run(url: str) -> list[dict]:
        audio = speech_like(seconds=3.0)
        events: list[dict] = []
        async with websockets.connect(url.replace("http", "ws") + "/v1/stream") as ws:
            await ws.send(config(window_s=1.0, hop_s=0.5))
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

    with serve_in_thread(create_app(Settings(model_path=tiny_model))) as url:
        events = asyncio.run(asyncio.wait_for(run(url), timeout=60))
    emotions = [e for e in events if e["type"] == "emotion"]
    assert len(emotions) == 5  # windows ending at 1.0, 1.5, ..., 3.0 s
    # Timing is measured by bench/stream_latency.py, not asserted here.
    assert all(e["latency_ms"] > 0 for e in emotions)
    assert events[-1]["type"] == "end"
