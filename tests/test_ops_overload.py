"""Overload with real concurrency: one inference really running (held at its feature
extraction), a real server, real clients. ``SER_MAX_INFLIGHT`` bounds HTTP and streams alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from service.api import create_app
from service.settings import Settings
from tests.helpers import encode, serve_in_thread, speech_like

DEADLINE_S = 30.0


class GatedFeatures:
    """The model's real feature set, whose ``extract`` waits until the test opens the gate.

    Instrumentation only: once open, every call is the real extraction, and the answer is
    the model's own.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        self.entered.set()
        if not self.gate.wait(DEADLINE_S):
            raise TimeoutError("the test never opened the gate")
        return self.inner.extract(samples)


@pytest.fixture
def held(tiny_model: Path) -> Iterator[tuple[str, GatedFeatures, Future[httpx.Response]]]:
    """A server with one inference slot, taken by a ``/predict`` blocked in its features.

    Yields the server's URL, the gate, and the blocked request's future answer.
    """
    app = create_app(Settings(model_path=tiny_model, max_inflight=1))
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        gated = GatedFeatures(app.state.model.feature_set)
        app.state.model.feature_set = gated
        try:
            blocked = pool.submit(
                httpx.post,
                f"{url}/predict",
                files={"file": ("a.wav", encode(speech_like(seconds=1.0)))},
                timeout=DEADLINE_S,
            )
            assert gated.entered.wait(DEADLINE_S), "the first request never reached features"
            yield url, gated, blocked
        finally:
            gated.gate.set()


#: A multipart body without the ``file`` field: parsed, it is a 422.
NO_FILE = {"data": {"other": "x"}}


def test_a_second_upload_is_shed_before_its_body_is_parsed(held) -> None:
    url, gated, blocked = held
    shed = httpx.post(f"{url}/predict", **NO_FILE, timeout=DEADLINE_S)
    # The form was never parsed: parsed, this body is a 422 (checked below).
    assert shed.status_code == 503, shed.text
    assert shed.json()["error"] == "overloaded"
    assert shed.headers["retry-after"] == "1"
    raw = httpx.post(f"{url}/predict/raw", content=b"x" * 100, timeout=DEADLINE_S)
    assert raw.status_code == 503
    assert httpx.get(f"{url}/healthz", timeout=DEADLINE_S).status_code == 200
    gated.gate.set()
    answer = blocked.result(timeout=DEADLINE_S)
    assert answer.status_code == 200 and answer.json()["label"]
    # With the slot free again, the same body is parsed and refused for what it is.
    parsed = httpx.post(f"{url}/predict", **NO_FILE, timeout=DEADLINE_S)
    assert parsed.status_code == 422 and parsed.json()["error"] == "validation_error"
    service = httpx.get(f"{url}/metrics", timeout=DEADLINE_S).json()["service"]
    assert service["requests"]["/predict"] == {"200": 1, "503": 1, "422": 1}
    assert service["errors"]["overloaded"] == 2


def _next_hop(ws) -> dict[str, Any]:
    """The next event about a window (segment boundaries are sent as well)."""
    while True:
        event = json.loads(ws.recv(timeout=DEADLINE_S))
        if event["type"] != "segment":
            return event


def test_a_stream_skips_its_hops_while_the_slot_is_held(held) -> None:
    url, gated, blocked = held
    with connect(url.replace("http", "ws") + "/v1/stream", open_timeout=DEADLINE_S) as ws:
        ws.send(json.dumps({"sample_rate": 16_000, "window_s": 1.0, "hop_s": 0.5}))
        ws.send((speech_like(seconds=1.0) * 32767).astype("<i2").tobytes())
        skipped = _next_hop(ws)
        assert skipped["type"] == "skipped" and skipped["error"] == "overloaded"
        assert (skipped["start"], skipped["end"]) == (0.0, 1.0)
        gated.gate.set()
        assert blocked.result(timeout=DEADLINE_S).status_code == 200
        # The stream stayed open: the next hop is classified.
        ws.send((speech_like(seconds=0.5) * 32767).astype("<i2").tobytes())
        emotion = _next_hop(ws)
        assert emotion["type"] == "emotion" and (emotion["start"], emotion["end"]) == (0.5, 1.5)
        ws.send(json.dumps({"type": "end"}))
        assert _next_hop(ws)["type"] == "end"
    service = httpx.get(f"{url}/metrics", timeout=DEADLINE_S).json()["service"]
    assert service["errors"]["overloaded"] == 1
    assert service["requests"]["/v1/stream"] == {"1000": 1}
