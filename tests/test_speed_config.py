"""Serving start-up settings that the speed benchmark depends on (correctness, not timing)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_ser_serve_limits_blas_threads_unless_told_otherwise() -> None:
    code = (
        "import os, service.__main__; "
        "print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    default = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert default.stdout.split() == ["1", "1"]
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "OPENBLAS_NUM_THREADS": "4"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert chosen.stdout.split() == ["4", "1"]


def test_make_train_time_keeps_the_previous_report_figure(tmp_path) -> None:
    """The whole `make train` takes 15-30 min and is not re-run by `python -m bench.speed`: a new
    report keeps the timed figure of the one before instead of losing it."""
    import json

    from bench.speed_report import make_train_time

    timed = tmp_path / "train.time"
    timed.write_text("\nreal\t14m45.713s\nuser\t15m53.089s\nsys\t1m51.914s\n")
    fresh = make_train_time(timed)
    assert fresh["real"] == "14m45.713s" and fresh["user"] == "15m53.089s"
    previous = tmp_path / "performance.json"
    previous.write_text(json.dumps({"make_train": fresh}))
    missing = tmp_path / "absent.time"
    assert make_train_time(missing, previous=previous) == fresh
    assert "skipped" in make_train_time(missing, previous=tmp_path / "none.json")
    previous.write_text(json.dumps({"make_train": {"skipped": "not found"}}))
    assert "skipped" in make_train_time(missing, previous=previous)
