"""Features + inference cost of one 3 s clip, per model, on one core (target: < 10 ms).

    taskset -c 0 .venv/bin/python -m experiments.accuracy_latency [--model models/ser-default.onnx ...]

Uses a real 3 s RAVDESS clip when the corpus is present (speech, with leading silence),
otherwise a synthetic voiced signal. Prints a Markdown table; timings are wall-clock medians
and 95th percentiles over ``--repeat`` runs after warm-up, single-threaded onnxruntime.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from service.allocator import tune_allocator
from service.audio import decode_audio
from service.model import load_model


def three_seconds(data_root: Path) -> tuple[np.ndarray, str]:
    clips = sorted((data_root / "ravdess").glob("Actor_01/*.flac"))
    if clips:
        samples = decode_audio(clips[0].read_bytes()).samples
        samples = np.resize(samples, 3 * 16_000).astype(np.float32)
        return samples, f"RAVDESS {clips[0].name}, looped/cut to 3.00 s"
    t = np.arange(3 * 16_000) / 16_000
    f0 = 180 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16_000
    y = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6))
    return np.asarray(y, dtype=np.float32), "synthetic voiced 3.00 s"


def measure(model_path: Path, samples: np.ndarray, repeat: int) -> dict[str, float]:
    model = load_model(model_path, threads=1)
    for _ in range(5):
        model.predict(samples)
    feats, total = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        x = model.feature_set.extract(samples)
        t1 = time.perf_counter()
        model.to_prediction(model.predict_proba(x)[0])
        t2 = time.perf_counter()
        feats.append(t1 - t0)
        total.append(t2 - t0)
    return {
        "feature_set": model.feature_set.name,  # type: ignore[dict-item]
        "features_ms": 1e3 * float(np.median(feats)),
        "total_ms": 1e3 * float(np.median(total)),
        "total_p95_ms": 1e3 * float(np.percentile(total, 95)),
    }


def main() -> None:
    tune_allocator()  # as the server does (service/main.py)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    samples, source = three_seconds(args.data_root)
    affinity = sorted(os.sched_getaffinity(0))
    print(f"clip: {source}; CPU affinity {affinity}; load average {os.getloadavg()[0]:.2f}")
    print("| model | feature set | features ms (median) | features + inference ms (median / p95) |")
    print("|---|---|---|---|")
    for path in args.model or [Path("models/ser-default.onnx")]:
        r = measure(path, samples, args.repeat)
        print(
            f"| {path} | {r['feature_set']} | {r['features_ms']:.2f} | "
            f"{r['total_ms']:.2f} / {r['total_p95_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
