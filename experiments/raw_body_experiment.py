"""What multipart handling costs per /predict: the service's app plus one experimental route
taking the raw ``audio/wav`` body, both loaded by wrk on one core, server CPU per request.

    .venv/bin/python -m experiments.raw_body_experiment

The route ``/predict_raw`` exists only in this script (``experiments.raw_body_experiment:app``).
It skips multipart parsing, the dependency chain and response-model validation, so the
difference is an upper bound on what a raw-body ``/predict`` could save. The measurement led
to the service's ``POST /predict/raw`` (same answers, errors, limits and auth as ``/predict``),
whose cost ``python -m bench.speed`` measures; this script reproduces the first estimate.
Needs ``wrk``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bench import http_load
from bench.clips import encode, speech_like
from service.api import create_app
from service.inference import classify_clip

app = create_app()


@app.post("/predict_raw")
async def predict_raw(request: Request) -> dict[str, Any]:
    data = await request.body()
    result = await run_in_threadpool(
        classify_clip, request.app.state.model, data, max_duration_s=60.0
    )
    return {"label": result.prediction.label}


RAW_LUA = """
local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "audio/wav"
"""


def main() -> None:
    os.sched_setaffinity(0, {1})
    body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
    port = http_load.free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "experiments.raw_body_experiment:app",
        "--port",
        str(port),
    ]
    proc = http_load.start([*cmd, "--no-access-log", "--log-level", "warning"], {}, core="0")
    try:
        http_load.wait_ready(f"http://127.0.0.1:{port}/readyz")
        tmp = Path(tempfile.mkdtemp())
        (tmp / "body").write_bytes(body)
        (tmp / "raw.lua").write_text(RAW_LUA)
        for _ in range(3):
            cpu0 = http_load.cpu_seconds(proc.pid)
            run = http_load.load_wrk(f"http://127.0.0.1:{port}/predict", body, 4, 4)
            multipart = 1000 * (http_load.cpu_seconds(proc.pid) - cpu0) / run["requests"]
            cpu0 = http_load.cpu_seconds(proc.pid)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    "-c4",
                    "-d4s",
                    "-s",
                    str(tmp / "raw.lua"),
                    f"http://127.0.0.1:{port}/predict_raw",
                ],
                env={**os.environ, "WRK_BODY_FILE": str(tmp / "body")},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            n = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
            raw = 1000 * (http_load.cpu_seconds(proc.pid) - cpu0) / n
            print(
                f"server CPU per request: multipart /predict {multipart:.3f} ms, raw body {raw:.3f} ms"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
