"""Per-stage costs in process (decode, resample, features, inference), each feature set's
cost on a 3 s clip, and the trainer's extraction rate: the in-process half of
``python -m bench.speed``."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.clips import encode, speech_like
from service.audio import decode_audio, resample
from service.features import FeatureSet, get_feature_set
from service.model import load_model
from trainer.corpora import default_data_root

#: The row of librosa's MFCC-40 (the paper's features as it computed them) in
#: :func:`feature_sets_3s`, the unit its ratios are in.
LIBROSA_MFCC = "librosa mfcc(n_mfcc=40), reference"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    out, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return out, result


def stats_ms(values: list[float]) -> dict[str, float]:
    arr = np.array(values) * 1000
    return {
        "median": round(float(np.median(arr)), 4),
        "p99": round(float(np.percentile(arr, 99)), 4),
        "n": len(values),
    }


def in_process(model_path: Path, quick: bool) -> list[dict[str, Any]]:
    os.sched_setaffinity(0, {0})
    model = load_model(model_path)
    fs = model.feature_set
    rows = []
    durations = (1, 3, 10) if quick else (1, 3, 10, 60)
    rates = (16_000, 44_100) if quick else (16_000, 22_050, 44_100, 48_000)
    for seconds in durations:
        for rate in rates:
            for fmt in ("WAV", "FLAC"):
                data = encode(speech_like(seconds, rate), rate, fmt)
                repeats = max(5, int(200 / seconds)) if not quick else max(3, int(50 / seconds))
                # The service's decoder (checks and the WAV fast path included), at the source
                # rate, so resampling is its own stage.
                dec, audio = timed(lambda: decode_audio(data, target_rate=rate), repeats)
                y = audio.samples
                res, y16 = timed(
                    lambda: resample(y, source_rate=rate, target_rate=fs.sample_rate), repeats
                )
                feat, x = timed(lambda: fs.extract(y16), repeats)
                inf, _ = timed(lambda: model.predict_proba(x), repeats)
                rows.append(
                    {
                        "seconds": seconds,
                        "rate": rate,
                        "format": fmt,
                        "decode": stats_ms(dec),
                        "resample": stats_ms(res),
                        "features": stats_ms(feat),
                        "inference": stats_ms(inf),
                    }
                )
    return rows


def feature_sets_3s(model_path: Path, repeats: int = 300) -> dict[str, dict[str, float]]:
    """Features + inference for a 3 s 16 kHz clip, per feature set, one core, beside librosa's
    ``mfcc(n_mfcc=40)`` of the same clip (when librosa imports): medians of ``repeats`` calls,
    taken round-robin so that other load on the machine falls on every case alike, and each
    case's ratio to librosa's MFCC."""
    from service.features import FEATURE_SETS

    os.sched_setaffinity(0, {0})
    y = speech_like(3.0, 16_000)
    model = load_model(model_path)
    cases: dict[str, Callable[[], Any]] = {
        name: (lambda fs=fs: fs.extract(y)) for name, fs in FEATURE_SETS.items()
    }
    try:
        import librosa  # noqa: PLC0415 - the reference only, not a service dependency

        cases[LIBROSA_MFCC] = lambda: librosa.feature.mfcc(y=y, sr=16_000, n_mfcc=40)
    except ImportError:
        pass
    cases["bundled model, features + inference"] = lambda: model.predict_proba(
        model.feature_set.extract(y)
    )
    for fs in FEATURE_SETS.values():
        fs.prepare()  # encoder files are unpacked and checked once, not in the first call
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats + 1):
        for name, case in cases.items():
            t = time.perf_counter()
            case()
            times[name].append(time.perf_counter() - t)
    out: dict[str, Any] = {name: stats_ms(t[1:]) for name, t in times.items()}
    if LIBROSA_MFCC in out:
        reference = out[LIBROSA_MFCC]["median"]
        for row in out.values():
            row["x_librosa_mfcc40"] = round(row["median"] / reference, 2)
    out["served feature set"] = model.feature_set.name
    return out


def cpu_all() -> float:
    import resource

    return sum(
        u.ru_utime + u.ru_stime
        for u in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def trainer_extraction(quick: bool, served: FeatureSet) -> dict[str, Any]:
    """Clips per second of the trainer's extraction on 2 cores, for the paper's features and
    the ``served`` ones, cold and cached (by feature set name)."""
    from trainer.corpora import read_ravdess, read_tess
    from trainer.extract import extract_corpus

    root = default_data_root()
    if not root.exists():
        return {"skipped": "no corpora"}
    clips = read_tess(root / "tess") + read_ravdess(root / "ravdess")
    if quick:
        clips = clips[::8]
    # Both cores (the HTTP runs pinned this process to one; workers inherit the affinity).
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    out = {}
    feature_sets = {fs.name: fs for fs in (get_feature_set("mfcc40-mean"), served)}
    for name, feature_set in feature_sets.items():
        with tempfile.TemporaryDirectory() as cache:
            cpu0 = cpu_all()
            t = time.perf_counter()
            extract_corpus(
                clips, feature_set=feature_set, cache_dir=Path(cache), workers=2, progress=False
            )
            cold = time.perf_counter() - t
            cpu = cpu_all() - cpu0
            t = time.perf_counter()
            extract_corpus(
                clips, feature_set=feature_set, cache_dir=Path(cache), workers=2, progress=False
            )
            warm = time.perf_counter() - t
        out[name] = {
            "clips": len(clips),
            "clips_per_s": round(len(clips) / cold, 1),
            # CPU seconds of this process and its (reaped) workers: what 2 dedicated cores
            # would give is 2 * clips / cpu, less the pool's serial parts.
            "cpu_s": round(cpu, 2),
            "clips_per_s_on_2_dedicated_cores": round(2 * len(clips) / cpu, 1),
            "cached_rerun_s": round(warm, 2),
        }
    return out
