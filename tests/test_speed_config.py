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
