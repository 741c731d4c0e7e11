"""The real server process: readiness, graceful shutdown on SIGTERM, several workers."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import encode, serve_process, speech_like


def _wait_inflight(url: str, client: threading.Thread, timeout: float = 30.0) -> bool:
    """True once the server's ``ser_inflight`` gauge shows a request being processed."""
    deadline = time.time() + timeout
    while time.time() < deadline and client.is_alive():
        metrics = httpx.get(f"{url}/metrics", headers={"Accept": "text/plain"}, timeout=5).text
        if any(
            line.startswith("ser_inflight ") and float(line.split()[1]) >= 1
            for line in metrics.splitlines()
        ):
            return True
        time.sleep(0.01)
    return False


def test_sigterm_lets_in_flight_requests_finish(tiny_model: Path) -> None:
    with serve_process(tiny_model, workers=1) as server:
        # A long recording with a timeline keeps the server busy for a noticeable time.
        rng = np.random.default_rng(0)
        long_clip = np.concatenate(
            [
                speech_like(seconds=2.0, seed=i)
                if i % 2
                else 0.001 * rng.standard_normal(32_000).astype(np.float32)
                for i in range(120)
            ]
        )
        data = encode(long_clip)
        result: dict[str, object] = {}

        def slow_request() -> None:
            started = time.perf_counter()
            response = httpx.post(
                f"{server.url}/predict?timeline=true",
                files={"file": ("long.wav", data)},
                timeout=60,
            )
            result["status"] = response.status_code
            result["segments"] = len(response.json()["timeline"]["segments"])
            result["seconds"] = time.perf_counter() - started

        thread = threading.Thread(target=slow_request)
        thread.start()
        # SIGTERM only once the server is working on the request (a fixed sleep raced the
        # client's connect on a loaded machine).
        assert _wait_inflight(server.url, thread), "the request never reached the server"
        server.proc.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        assert result.get("status") == 200 and result["segments"] == 60
        # Uvicorn shuts down gracefully, then re-raises the signal it caught (exit -SIGTERM).
        assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Traceback" not in server.output()
        with pytest.raises(httpx.HTTPError):  # and it no longer accepts connections
            httpx.get(f"{server.url}/healthz", timeout=1)


def test_several_workers_serve(tiny_model: Path) -> None:
    with serve_process(tiny_model, workers=2) as server:
        answers = [
            httpx.post(f"{server.url}/predict", files={"file": ("a.wav", encode(speech_like()))})
            for _ in range(6)
        ]
        assert [a.status_code for a in answers] == [200] * 6
        # uvicorn's supervisor runs one process per worker
        assert len(server.pids()) >= 3
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
