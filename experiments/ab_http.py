"""Server CPU per `POST /predict` of this tree against another commit, in alternating runs.

    .venv/bin/python -m experiments.ab_http BASE_COMMIT [--rounds 3] [--seconds 4]

This machine's speed drifts by 15% and more between runs (a shared VM: the same paper-style
baseline took 47 ms of CPU a request on one day and 55 ms on the next), so a change is
judged by alternating the two servers under the same load, not by comparing two
`python -m bench.speed` reports. Each round starts the base commit's server (from a temporary
`git worktree`) and this tree's, one after the other, pinned to core 0 with wrk on core 1, and
measures server CPU (user + system, `/proc`) per request for 3 s 16 kHz WAV uploads at
concurrency 4.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import http_load
from bench.clips import encode, speech_like
from bench.http_load import ROOT


def cpu_ms_per_request(tree: Path, body: bytes, seconds: float) -> float:
    port = http_load.free_port()
    # The tree's own packages first: the editable install points at this checkout.
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); import uvicorn; "
        f"uvicorn.run('service.main:app', port={port}, log_level='warning', access_log=False)"
    )
    proc = http_load.start([sys.executable, "-c", code], {"OPENBLAS_NUM_THREADS": "1"}, core="0")
    try:
        http_load.wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
        url = f"http://127.0.0.1:{port}/predict"
        http_load.load_wrk(url, body, 1, 1)  # warm-up
        before = http_load.cpu_seconds(proc.pid)
        run = http_load.load_wrk(url, body, 4, seconds)
        return 1000 * (http_load.cpu_seconds(proc.pid) - before) / run["requests"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    body = encode(speech_like(3.0, 16_000), 16_000, "WAV")
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_tree), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            figures: dict[str, list[float]] = {"base": [], "this tree": []}
            for _ in range(args.rounds):
                for name, tree in (("base", base_tree), ("this tree", ROOT)):
                    figures[name].append(cpu_ms_per_request(tree, body, args.seconds))
                    print(f"{name}: {figures[name][-1]:.3f} ms server CPU / request", flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=True
            )
    for name, values in figures.items():
        print(f"{name:>9}: " + ", ".join(f"{v:.3f}" for v in values) + " ms")
    ratio = sum(figures["base"]) / sum(figures["this tree"])
    print(f"this tree uses {100 * (1 - 1 / ratio):.0f}% less server CPU per request")


if __name__ == "__main__":
    main()
