"""Streaming benchmark: event latency in real time, and the real-time factor flat out.

    .venv/bin/python -m bench.stream_latency [--seconds 20]

Starts ``ser-serve`` (bundled model, one worker) on 127.0.0.1, streams speech over
``/v1/stream`` (2 s windows every 0.5 s) and prints a Markdown table. Latency is measured by
the server from the arrival of the message holding a window's last sample to the event being
sent; the real-time factor is wall time over audio time when sending as fast as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import websockets

from bench.clips import speech_like
from bench.http_load import wait_ready


async def stream(port: int, audio: np.ndarray, *, realtime: bool) -> tuple[list[dict], float]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    chunk = 1600  # 100 ms
    events: list[dict] = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/v1/stream", max_queue=None) as ws:
        await ws.send(json.dumps({"sample_rate": 16_000, "window_s": 2.0, "hop_s": 0.5}))

        async def reader() -> None:
            async for message in ws:
                events.append(json.loads(message))

        task = asyncio.create_task(reader())
        started = time.perf_counter()
        for start in range(0, pcm.size, chunk):
            await ws.send(pcm[start : start + chunk].tobytes())
            if realtime:
                await asyncio.sleep(
                    max(0.0, started + (start + chunk) / 16_000 - time.perf_counter())
                )
        await ws.send(json.dumps({"type": "end"}))
        await task
        elapsed = time.perf_counter() - started
    return events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SER_PORT": str(port), "SER_WORKERS": "1", "SER_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        ["taskset", "-c", "0", str(Path(sys.executable).parent / "ser-serve")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz")
        os.sched_setaffinity(0, {1})
        audio = speech_like(args.seconds, 16_000)
        rows = []
        for realtime in (True, False):
            events, elapsed = asyncio.run(stream(port, audio, realtime=realtime))
            latency = np.array([e["latency_ms"] for e in events if e["type"] == "emotion"])
            rows.append(
                (
                    ("real time" if realtime else "as fast as possible"),
                    latency.size,
                    float(np.median(latency)),
                    float(np.percentile(latency, 99)),
                    elapsed / args.seconds,
                )
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"Command: `python -m bench.stream_latency {' '.join(sys.argv[1:])}` — {args.seconds:g} s of speech, 2 s windows every 0.5 s, "
        f"server on core 0, client on core 1; load average {os.getloadavg()[0]:.1f}.\n"
    )
    print("| mode | events | latency median (ms) | latency p99 (ms) | wall time / audio time |")
    print("|---|---|---|---|---|")
    for mode, n, p50, p99, rtf in rows:
        print(f"| {mode} | {n} | {p50:.2f} | {p99:.2f} | {rtf:.3f} |")


if __name__ == "__main__":
    main()
