"""Synthetic audio and tiny ONNX models for tests: no corpora, no network, no TensorFlow."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import soundfile as sf
import uvicorn
from onnx import TensorProto, helper, numpy_helper

from service import contract
from service.features import get_feature_set


def tone(
    *,
    freq: float = 220.0,
    seconds: float = 1.0,
    rate: int = 16_000,
    amplitude: float = 0.3,
    channels: int = 1,
    seed: int = 0,
    noise: float = 0.01,
) -> np.ndarray:
    """A harmonic tone with a little noise: shape ``(n,)`` or ``(n, channels)``, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    y = sum(amplitude / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    y = y + noise * rng.standard_normal(t.shape)
    y = y.astype(np.float32)
    if channels > 1:
        y = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return y


def speech_like(
    *,
    freq: float = 160.0,
    seconds: float = 1.0,
    rate: int = 16_000,
    amplitude: float = 0.3,
    channels: int = 1,
    seed: int = 0,
    noise: float = 0.003,
) -> np.ndarray:
    """A voice-like clip that the speech detector takes for speech, tightly cut (no pause).

    Harmonics of a pitch around ``freq`` that glides (+-15% at 2.5 Hz), under a syllable-rate
    envelope (4 Hz, never silent: the level moves by about 12 dB), with a little noise; the
    arguments are :func:`tone`'s. Shape ``(n,)`` or ``(n, channels)``, float32.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = freq * (1.0 + 0.15 * np.sin(2 * np.pi * 2.5 * t + seed))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t + 0.7 * seed)
    y = 0.5 * amplitude * voice * envelope + noise * rng.standard_normal(t.shape)
    y = y.astype(np.float32)
    if channels > 1:
        y = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return y


def coloured_noise(
    *,
    exponent: float = 0.0,
    seconds: float = 1.0,
    rate: int = 16_000,
    level_db: float = -30.0,
    seed: int = 0,
) -> np.ndarray:
    """Noise alone, whose power falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown), at an
    RMS of ``level_db`` dBFS: shape ``(n,)``, float32."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    freqs[0] = freqs[1] if n > 2 else 1.0
    y = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    y *= 10 ** (level_db / 20) / (np.sqrt(np.mean(y**2)) + 1e-30)
    return y.astype(np.float32)


def hum(
    *, freq: float = 50.0, seconds: float = 1.0, rate: int = 16_000, level_db: float = -30.0
) -> np.ndarray:
    """Mains hum: ``freq`` and its harmonics up to the 7th, falling as 1/k, at ``level_db``
    dBFS RMS: shape ``(n,)``, float32."""
    t = np.arange(int(seconds * rate)) / rate
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 8))
    y *= 10 ** (level_db / 20) / np.sqrt(np.mean(y**2))
    return np.asarray(y, dtype=np.float32)


def tone_classes(
    feature_set: Any, freqs: Sequence[float], *, per_class: int, seed_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features of half-second tones, one pitch class per label (each clip detuned by up to
    9%): ``x`` of shape ``(len(freqs) * per_class, dim)``, float32, and ``y`` the labels."""
    x, y = [], []
    for label, freq in enumerate(freqs):
        for i in range(per_class):
            clip = tone(freq=freq * (1 + 0.03 * (i % 4)), seconds=0.5, seed=seed_step * label + i)
            x.append(feature_set.extract(clip).reshape(-1))
            y.append(label)
    return np.array(x, dtype=np.float32), np.array(y)


def encode(
    samples: np.ndarray, *, rate: int = 16_000, format: str = "WAV", subtype: str | None = None
) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=format, subtype=subtype)
    return buffer.getvalue()


#: Evaluation metrics in the shape the trainer writes (a protocol, a held-out group, a summary).
DEFAULT_METRICS = {
    "speaker": {
        "tess": {
            "folds": 2,
            "accuracy": 0.5,
            "accuracy_std": 0.1,
            "unweighted_accuracy": 0.5,
            "unweighted_accuracy_std": 0.1,
            "macro_f1": 0.45,
            "macro_f1_std": 0.1,
            "labels": list(contract.EMOTIONS),
            "per_class_recall": {e: 0.5 for e in contract.EMOTIONS},
            "confusion": [[5 if i == j else 1 for j in range(7)] for i in range(7)],
        }
    }
}


def make_onnx_model(
    path: Path,
    *,
    feature_set: str = "mfcc40-mean",
    labels: Sequence[str] = contract.EMOTIONS,
    seed: int = 0,
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    metadata_overrides: dict[str, Any] | None = None,
    drop_keys: Sequence[str] = (),
    input_dim: int | None = None,
) -> Path:
    """A linear softmax classifier over ``feature_set`` with full contract metadata."""
    fs = get_feature_set(feature_set)
    dim = input_dim or fs.dim
    rng = np.random.default_rng(seed)
    w = weights if weights is not None else 0.01 * rng.standard_normal((dim, len(labels)))
    b = bias if bias is not None else np.zeros(len(labels))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(b.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    meta: dict[str, str] = {
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_MODEL_NAME: "tiny",
        contract.KEY_MODEL_VERSION: f"tiny-{seed}",
        contract.KEY_LABELS: json.dumps(list(labels)),
        contract.KEY_FEATURE_SET: fs.name,
        contract.KEY_FEATURE_CONFIG: json.dumps(fs.to_dict()),
        contract.KEY_NORMALISATION: json.dumps({"in_graph": True}),
        contract.KEY_TRAINING_DATA: json.dumps({"clips": 0, "corpora": {}}),
        contract.KEY_METRICS: json.dumps(DEFAULT_METRICS),
    }
    for key, value in (metadata_overrides or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    for key in drop_keys:
        meta.pop(key, None)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# Test servers: bound to port 0 (no pick-a-port-then-bind race), every wait with a deadline.


@contextmanager
def serve_in_thread(app: Any, *, timeout: float = 30.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread, on a socket bound to a free port.

    Parameters
    ----------
    app : ASGI application
        Its lifespan runs; the server is up once it has completed.
    timeout : float
        Seconds allowed for start-up and for shutdown.

    Yields
    ------
    str
        The base URL, ``http://127.0.0.1:<port>``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server stopped during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout:g} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
        sock.close()
        if thread.is_alive():
            raise TimeoutError(f"the server did not stop within {timeout:g} s")


_LISTENING = re.compile(r"Uvicorn running on https?://[^:\s]+:(\d+)")


@dataclass
class ServerProcess:
    """A ``ser-serve`` process (``python -m service``) and what it printed so far."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> list[int]:
        """The server's process and its worker processes, if any."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [self.proc.pid, *(int(pid) for pid in children.read_text().split())]

    def rss_bytes(self) -> int:
        """Current resident memory (``VmRSS``), summed over the process and its workers."""
        total = 0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total


@contextmanager
def serve_process(
    model: Path, *, workers: int = 1, env: dict[str, str] | None = None, timeout: float = 60.0
) -> Iterator[ServerProcess]:
    """Start ``python -m service --port 0``, read back the port it bound, wait until ready.

    Its output is drained by a thread (so a chatty server never blocks on a full pipe) and
    kept in :attr:`ServerProcess.lines`. The process is killed on exit if still running.

    Parameters
    ----------
    model : Path
        The ONNX model to serve (``SER_MODEL_PATH``).
    workers : int
        Uvicorn worker processes.
    env : dict or None
        More ``SER_*`` settings.
    timeout : float
        Seconds allowed to bind and to become ready.
    """
    full_env = {
        **os.environ,
        "SER_MODEL_PATH": str(model),
        # INFO: uvicorn's "running on" line carries the port it bound.
        "SER_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    proc = subprocess.Popen(
        # Port 0: the kernel picks a free port when uvicorn binds; it is read back below.
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "0"]
        + ["--workers", str(workers)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    bound: list[int] = []
    seen = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and not bound:
                bound.append(int(match.group(1)))
                seen.set()
        seen.set()  # the process ended

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        if not seen.wait(timeout) or not bound:
            raise RuntimeError("the server did not report its port:\n" + "\n".join(lines))
        server = ServerProcess(proc, bound[0], lines)
        while True:
            if proc.poll() is not None:
                raise RuntimeError("the server exited:\n" + server.output())
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not ready within {timeout:g} s")
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=timeout)
        reader.join(timeout=timeout)
