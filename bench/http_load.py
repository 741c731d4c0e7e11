"""Servers under load: start one pinned to a core, wait until it answers, load it with wrk
(or httpx), read its CPU time and memory from /proc, time its cold start. The HTTP half of
``python -m bench.speed``, and the helpers of the smaller HTTP benchmarks."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import encode, speech_like

ROOT = Path(__file__).resolve().parent.parent
#: Where this interpreter's console scripts (ser-serve) are.
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> float:
    """Seconds until ``url`` answers 200, polled every 10 ms with urllib (cheap per call).

    Fails at once if ``proc`` (the server) has exited, e.g. for want of the bench extra.
    """
    import urllib.error
    import urllib.request

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with {proc.returncode}; is the bench extra installed? "
                "(make bench-speed installs it)"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise TimeoutError(url)


def start(cmd: list[str], env: dict[str, str], core: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["taskset", "-c", core, *cmd],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def rss_mb(pid: int) -> float:
    total = 0
    for p in [pid, *child_pids(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (the uvicorn workers), in seconds."""
    total = 0.0
    for p in [pid, *child_pids(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (FileNotFoundError, IndexError):
            pass
    return total


def child_pids(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


async def load(
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    max_requests: int,
    raw: bool = False,
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    request: dict[str, Any] = (
        {"content": body, "headers": {"content-type": "audio/wav"}}
        if raw
        else {"files": {"file": ("clip.wav", body, "audio/wav")}}
    )

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline and len(latencies) < max_requests:
            t = time.perf_counter()
            r = await client.post(url, **request)
            latencies.append(time.perf_counter() - t)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
        "statuses": statuses,
    }


WRK_LUA = """
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")
function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non2xx": %d, '
    .. '"socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def multipart(body: bytes) -> bytes:
    return (
        b"--BENCHBOUNDARY\r\n"
        b'Content-Disposition: form-data; name="file"; filename="clip.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + body + b"\r\n--BENCHBOUNDARY--\r\n"
    )


MULTIPART_TYPE = "multipart/form-data; boundary=BENCHBOUNDARY"


def load_wrk(
    url: str, body: bytes, concurrency: int, seconds: float, raw: bool = False
) -> dict[str, Any]:
    """wrk (C, epoll) as the load generator: one thread, ``concurrency`` keep-alive connections.

    Latency is wrk's own (coordinated-omission-prone closed loop, like the httpx fallback).
    """
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "post.lua", Path(tmp) / "body"
        script.write_text(WRK_LUA)
        data.write_bytes(body if raw else multipart(body))
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{seconds:.0f}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            env={
                **os.environ,
                "WRK_BODY_FILE": str(data),
                "WRK_CONTENT_TYPE": "audio/wav" if raw else MULTIPART_TYPE,
            },
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    res = json.loads(out.strip().splitlines()[-1])
    ok = res["requests"] - res["non2xx"]
    return {
        "concurrency": concurrency,
        "requests": res["requests"],
        "rps": round(ok / (res["duration_us"] / 1e6), 1),
        "p50_ms": round(res["p50_us"] / 1000, 2),
        "p99_ms": round(res["p99_us"] / 1000, 2),
        "statuses": {"non-2xx": res["non2xx"], "socket errors": res["socket_errors"]},
        "generator": "wrk",
    }


def run_load(
    url: str, body: bytes, concurrency: int, seconds: float, raw: bool = False
) -> dict[str, Any]:
    if shutil.which("wrk"):
        return load_wrk(url, body, concurrency, seconds, raw)
    return asyncio.run(load(url, body, concurrency, seconds, 20_000, raw)) | {"generator": "httpx"}


def http_bench(
    cmd: list[str],
    env: dict[str, str],
    levels: tuple[int, ...],
    seconds: float,
    label: str,
    server_cores: str = "0",
    raw: bool = False,
) -> dict[str, Any]:
    # The load generator on core 1; with both cores for the server it shares core 1.
    os.sched_setaffinity(0, {1})
    port = free_port()
    env = {**env, "SER_PORT": str(port), "PORT": str(port)}
    proc = start([c.replace("{port}", str(port)) for c in cmd], env, core=server_cores)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/healthz", proc=proc)
        body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
        url = f"http://127.0.0.1:{port}/predict" + ("/raw" if raw else "")
        asyncio.run(load(url, body, 1, 1.0, 20, raw))  # warm-up
        runs = []
        for c in levels:
            # Server CPU time per answered request: robust to other jobs on the machine, and
            # 1000 / cpu_ms is what one dedicated core could serve.
            cpu0 = cpu_seconds(proc.pid)
            run = run_load(url, body, c, seconds, raw)
            served = max(1, run["requests"])
            run["server_cpu_ms_per_request"] = round(
                1000 * (cpu_seconds(proc.pid) - cpu0) / served, 3
            )
            runs.append(run)
        return {
            "label": label,
            "ready_s": round(ready, 2),
            "runs": runs,
            "rss_mb": round(rss_mb(proc.pid), 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def raw_post(sock: socket.socket, port: int, payload: bytes) -> int:
    """POST a prebuilt multipart ``payload`` to /predict on a kept-alive socket; the status.

    Raw sockets so that the client's own first-use costs (lazy imports, SSL context) do not
    count as the server's first-request time.
    """
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=BENCHBOUNDARY\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock.sendall(head + payload)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    header, _, rest = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    length = next(
        int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(lines[0].split()[1])


def cold_start(numba_cache: str | None, model_path: Path) -> dict[str, float]:
    port = free_port()
    env = {"SER_PORT": str(port), "SER_WORKERS": "1", "SER_MODEL_PATH": str(model_path.resolve())}
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = numba_cache
    payload = multipart(encode(speech_like(3.0, 16_000), 16_000, "WAV"))
    t0 = time.perf_counter()
    proc = start([str(BIN / "ser-serve")], env, core="0")
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}/readyz")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            t1 = time.perf_counter()
            assert raw_post(sock, port, payload) == 200
            first_answer = time.perf_counter()
            steady = []
            for _ in range(50):
                t = time.perf_counter()
                assert raw_post(sock, port, payload) == 200
                steady.append(time.perf_counter() - t)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "to_ready_s": round(ready, 3),
        "process_start_to_first_answer_s": round(first_answer - t0, 3),
        "first_request_ms": round(1000 * (first_answer - t1), 2),
        "steady_median_ms": round(1000 * statistics.median(steady), 2),
    }


def median_of(run: Callable[[], dict[str, float]], times: int) -> dict[str, float]:
    results = [run() for _ in range(times)]
    return {k: float(np.median([r[k] for r in results])) for k in results[0]} | {"starts": times}
