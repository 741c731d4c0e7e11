"""Memory and time of a long-recording timeline: block-wise decoding against whole decoding.

    .venv/bin/python -m bench.timeline_memory [--seconds 600] [--rate 48000] [--formats wav flac]

Writes a synthetic stereo recording (speech-like harmonic bursts, 4 s in every 10 s, in faint
noise) to a temporary folder, then, for each format, runs each path in a fresh process:

- ``whole``: what ``/predict?timeline=true`` did before: ``classify_clip`` (decode everything
  to one array, features of the whole clip) then ``timeline(model, samples)``;
- ``blocks``: ``classify_with_timeline``, two block-wise passes over the file.

Each process reports the rise of its peak RSS over its RSS before the call (the model is loaded
and warmed up first) and the wall time; a second run of the same path under tracemalloc gives
the peak of traced allocations (numpy's included). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from service.settings import BUNDLED_MODEL  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

MODES = ("whole", "blocks")


def write_recording(path: Path, *, seconds: int, rate: int) -> None:
    """Stereo speech-like bursts in noise, written 10 s at a time (never whole in memory)."""
    rng = np.random.default_rng(0)
    t = np.arange(4 * rate) / rate
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for k in range(seconds // 10):
            y = 0.002 * rng.standard_normal(10 * rate)
            f0 = 120.0 + 5 * (k % 20)
            burst = sum(0.3 / h * np.sin(2 * np.pi * f0 * h * t) for h in (1, 2, 3))
            y[3 * rate : 7 * rate] += burst * np.hanning(burst.size) ** 0.2
            out.write(np.stack([y, 0.8 * y], axis=1).astype(np.float32))


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, path: str, model_path: str, traced: bool) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    import tracemalloc

    from service.audio import decode_audio
    from service.model import load_model
    from service.timeline import classify_with_timeline, timeline

    model = load_model(model_path)
    model.predict(np.zeros(model.feature_set.sample_rate, dtype=np.float32) + 0.01)

    def run() -> dict[str, Any]:
        if mode == "whole":
            samples = decode_audio(path, target_rate=model.feature_set.sample_rate).samples
            model.predict(samples)  # the old path's whole-clip answer
            return timeline(model, samples)
        body = classify_with_timeline(model, path).timeline
        assert body is not None
        return body

    before = _rss_mb()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    body = run()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"segments": body["summary"]["segments"], "seconds": seconds}
    if traced:
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    else:
        # ru_maxrss is the process's high-water mark in KiB on Linux.
        out["rss_rise_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return out


def measure(mode: str, path: Path, model: str, *, traced: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.timeline_memory", "--child", mode, str(path), model]
    if traced:
        command.append("--traced")
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=int, default=48_000)
    parser.add_argument("--formats", nargs="+", default=["wav", "flac"], choices=["wav", "flac"])
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "PATH", "MODEL"), help=argparse.SUPPRESS
    )
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, traced=args.traced)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        write_recording(wav, seconds=args.seconds, rate=args.rate)
        paths = {"wav": wav}
        if "flac" in args.formats:
            paths["flac"] = Path(tmp) / "long.flac"
            with (
                sf.SoundFile(wav) as src,
                sf.SoundFile(
                    paths["flac"], "w", samplerate=src.samplerate, channels=2, subtype="PCM_16"
                ) as dst,
            ):
                for block in src.blocks(blocksize=10 * args.rate, dtype="float32"):
                    dst.write(block)
        model_name = Path(args.model).name
        print(
            f"{args.seconds} s of {args.rate} Hz stereo PCM_16, model {model_name}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs\n"
        )
        print("| format | file MB | path | segments | time s | peak RSS rise MB | traced peak MB |")
        print("|---|---|---|---|---|---|---|")
        for fmt in args.formats:
            path = paths[fmt]
            size = path.stat().st_size / 1e6
            for mode in MODES:
                plain = measure(mode, path, args.model, traced=False)
                traced = measure(mode, path, args.model, traced=True)
                print(
                    f"| {fmt} | {size:.0f} | {mode} | {plain['segments']} | "
                    f"{plain['seconds']:.2f} | {plain['rss_rise_mb']:.0f} | "
                    f"{traced['traced_peak_mb']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
