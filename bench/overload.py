"""Overload test: far more concurrent uploads than the service admits, health checks alongside.

    .venv/bin/python -m bench.overload [--seconds 15] [--concurrency 64]

Starts ``ser-serve`` (bundled model, one worker, ``SER_MAX_INFLIGHT=2``) pinned to core 0 on
127.0.0.1, floods ``/predict`` with 3 s WAV uploads from core 1 for a bounded time while polling
``/healthz`` every 50 ms, then checks that the service recovers. Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from bench.clips import encode, speech_like
from bench.http_load import wait_ready


async def flood(
    url: str, body: bytes, concurrency: int, seconds: float
) -> tuple[Counter[int], list[float], list[float], int]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    health: list[float] = []
    health_failures = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency + 2)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def uploader() -> None:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    r = await client.post(f"{url}/predict", files={"file": ("a.wav", body)})
                    statuses[r.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1
                latencies.append(time.perf_counter() - t)

        async def prober() -> None:
            nonlocal health_failures
            async with httpx.AsyncClient(timeout=5) as probe:
                while time.perf_counter() < deadline:
                    t = time.perf_counter()
                    try:
                        ok = (await probe.get(f"{url}/healthz")).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    health.append(time.perf_counter() - t)
                    health_failures += not ok
                    await asyncio.sleep(0.05)

        await asyncio.gather(prober(), *(uploader() for _ in range(concurrency)))
    return statuses, latencies, health, health_failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SER_PORT": str(port),
        "SER_WORKERS": "1",
        "SER_MAX_INFLIGHT": "2",
        "SER_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        ["taskset", "-c", "0", str(Path(sys.executable).parent / "ser-serve")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz")
        os.sched_setaffinity(0, {1})
        body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
        statuses, latencies, health, health_failures = asyncio.run(
            flood(url, body, args.concurrency, args.seconds)
        )
        recovery = [
            httpx.post(f"{url}/predict", files={"file": ("a.wav", body)}, timeout=10).status_code
            for _ in range(20)
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    sent = sum(statuses.values())
    other_5xx = sum(n for code, n in statuses.items() if code >= 500 and code != 503)
    lat = np.array(latencies) * 1000
    hl = np.array(health) * 1000
    print(
        f"Command: `python -m bench.overload {' '.join(sys.argv[1:])}`; one worker on core 0, SER_MAX_INFLIGHT=2, "
        f"{args.concurrency} concurrent uploaders + a /healthz probe every 50 ms on core 1, "
        f"{args.seconds:g} s; load average {os.getloadavg()[0]:.1f}.\n"
    )
    print("| measure | value |\n|---|---|")
    print(f"| requests sent | {sent} |")
    print(f"| answers by status | {dict(sorted(statuses.items()))} |")
    print(f"| 5xx other than 503 (0 = connection error) | {other_5xx + statuses.get(0, 0)} |")
    print(
        f"| /predict latency p50 / p99 under overload | {np.median(lat):.1f} / {np.percentile(lat, 99):.1f} ms |"
    )
    print(
        f"| /healthz probes, failures, p99 | {hl.size}, {health_failures}, {np.percentile(hl, 99):.1f} ms |"
    )
    print(f"| recovery: 20 sequential requests after the flood | {dict(Counter(recovery))} |")


if __name__ == "__main__":
    main()
