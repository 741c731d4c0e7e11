"""The real server process: readiness, graceful shutdown on SIGTERM, several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import encode, tone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model: Path, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "SER_MODEL_PATH": str(model),
        "SER_PORT": str(port),
        "SER_WORKERS": str(workers),
        "SER_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not become ready")


def _wait_inflight(port: int, client: threading.Thread, timeout: float = 30.0) -> bool:
    """True once the server's ``ser_inflight`` gauge shows a request being processed."""
    deadline = time.time() + timeout
    while time.time() < deadline and client.is_alive():
        metrics = httpx.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Accept": "text/plain"}, timeout=5
        ).text
        if any(
            line.startswith("ser_inflight ") and float(line.split()[1]) >= 1
            for line in metrics.splitlines()
        ):
            return True
        time.sleep(0.01)
    return False


def test_sigterm_lets_in_flight_requests_finish(tiny_model: Path) -> None:
    port = _free_port()
    proc = _start(tiny_model, port, workers=1)
    try:
        _wait_ready(port, proc)
        # A long recording with a timeline keeps the server busy for a noticeable time.
        rng = np.random.default_rng(0)
        long_clip = np.concatenate(
            [
                tone(seconds=2.0, seed=i)
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
                f"http://127.0.0.1:{port}/predict?timeline=true",
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
        assert _wait_inflight(port, thread), "the request never reached the server"
        proc.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        assert result.get("status") == 200 and result["segments"] == 60
        # Uvicorn shuts down gracefully, then re-raises the signal it caught (exit -SIGTERM).
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        output = proc.stdout.read() if proc.stdout else ""
        assert "Traceback" not in output
        with pytest.raises(httpx.HTTPError):  # and it no longer accepts connections
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_several_workers_serve(tiny_model: Path) -> None:
    port = _free_port()
    proc = _start(tiny_model, port, workers=2)
    try:
        _wait_ready(port, proc)
        answers = [
            httpx.post(
                f"http://127.0.0.1:{port}/predict", files={"file": ("a.wav", encode(tone()))}
            ).status_code
            for _ in range(6)
        ]
        assert answers == [200] * 6
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) >= 2  # uvicorn's supervisor runs one process per worker
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
