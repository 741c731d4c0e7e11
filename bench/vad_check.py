"""Validation of the speech detector (:mod:`service.vad`) on real and generated audio.

    .venv/bin/python -m bench.vad_check [--data-root ../shared/data] [--limit N] [--no-noise]

Four checks, printed as Markdown tables:

1. Cost: the detector (:func:`service.vad.speech_segments`) on a 3 s clip against the feature
   extraction of ``models/ser-default.onnx``, timed alternately in this run on one core (as
   ser-serve runs: one BLAS thread, its malloc settings), medians and their ratio.
2. Real speech: every clip of the five corpora (``trainer.corpora.CORPORA``: tightly cut acted
   utterances, sentences with pauses), as released; the fraction refused (should be about 0),
   and each refused clip with why.
3. Non-speech: digital silence, 16-bit dither, -80 dBFS hiss, white, pink and brown noise at
   -50 to -10 dBFS, 50 Hz (and 60 Hz) hum with harmonics, with and without hiss, each 1, 2, 3
   and 5 s long, three seeds; every one must be refused.
4. Speech in noise: every corpus clip with white noise or babble (six clips of other speakers
   at equal level, summed) at 10 and 5 dB SNR; the fraction still found to hold speech. The
   SNR is against the clip's active level: the mean power of its 30 ms frames within 30 dB of
   its loudest (its silences do not dilute it).

Without the corpora (a fresh clone), checks 2 and 4 are skipped. Not part of the tests, which
check the same rules on synthetic audio only. ``--set voicing=0.6`` tries other settings.
"""

from __future__ import annotations

import os

# As ser-serve does (service/__main__.py): one BLAS thread. Set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from bench.clips import speech_like  # noqa: E402
from service.allocator import tune_allocator  # noqa: E402
from service.model import load_model  # noqa: E402
from service.settings import BUNDLED_MODEL  # noqa: E402
from service.vad import (  # noqa: E402
    DEFAULT_VAD,
    VadConfig,
    frame_stats,
    segments_from_stats,
    speech_seconds,
    voiced,
)
from trainer.corpora import CORPORA, Clip, default_data_root, load_corpora  # noqa: E402

RATE = 16_000


def cost(clip: np.ndarray, config: VadConfig, repeats: int = 400) -> dict[str, float]:
    """Median milliseconds of the detector and of ser-default's features on ``clip``, timed
    alternately so that both see the same machine load."""
    from service.vad import speech_segments  # noqa: PLC0415 - what /predict runs

    model = load_model(BUNDLED_MODEL)

    def detector() -> object:
        return speech_segments(clip, sample_rate=RATE, config=config)

    def features() -> object:
        return model.feature_set.extract(clip)

    times: dict[str, list[float]] = {"vad_ms": [], "features_ms": []}
    for _ in range(repeats + 5):
        for name, fn in (("vad_ms", detector), ("features_ms", features)):
            started = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - started))
    return {name: float(np.median(values[5:])) for name, values in times.items()}


def verdict(samples: np.ndarray, config: VadConfig) -> dict[str, Any]:
    """Whether ``samples`` hold speech, with the measures that decided it and, when refused,
    which rule refused it."""
    stats = frame_stats(samples, sample_rate=RATE, config=config)
    n = samples.shape[0]
    segments = segments_from_stats(stats, n, sample_rate=RATE, config=config)
    flags = voiced(stats, config)
    energies = stats.energy_db[flags]
    why = ""
    if not segments:
        if not flags.any():
            why = "no voiced frame"
        elif segments_from_stats(
            stats, n, sample_rate=RATE, config=replace(config, min_range_db=0)
        ):
            why = f"level moves less than {config.min_range_db:g} dB"
        else:
            why = f"under {config.min_voiced_s:g} s of voicing in any run"
    return {
        "speech": bool(segments),
        "speech_s": speech_seconds(segments, sample_rate=RATE),
        "voiced_s": float(flags.sum() * config.frame_s),
        "range_db": float(np.ptp(energies)) if energies.size else 0.0,
        "peak_db": float(stats.energy_db.max()) if stats.energy_db.size else -120.0,
        "duration_s": n / RATE,
        "why": why,
    }


# Generated non-speech.


def _coloured(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    freqs[0] = freqs[1]
    y = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return y / np.sqrt(np.mean(y**2))


def _at_db(y: np.ndarray, level_db: float) -> np.ndarray:
    return (y / np.sqrt(np.mean(y**2) + 1e-30) * 10 ** (level_db / 20)).astype(np.float32)


def non_speech(seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """``(kind, samples)`` of every generated non-speech case, 1-5 s long."""
    rng = np.random.default_rng(seed)
    for seconds in (1.0, 2.0, 3.0, 5.0):
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        yield "digital silence", np.zeros(n, dtype=np.float32)
        # TPDF dither of 16-bit audio: about -101 dBFS.
        lsb = 1 / 32768
        yield "dither (16-bit TPDF)", (lsb * (rng.random(n) - rng.random(n))).astype(np.float32)
        yield "hiss -80 dBFS", _at_db(rng.standard_normal(n), -80)
        for name, exponent in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
            for level in (-50, -35, -20, -10):
                yield f"{name} noise {level} dBFS", _at_db(_coloured(rng, n, exponent), level)
        for mains in (50, 60):
            for level in (-40, -20):
                phases = rng.uniform(0, 2 * np.pi, 7)
                hum = sum(
                    np.sin(2 * np.pi * mains * k * t + phases[k - 1]) / k for k in range(1, 8)
                )
                hiss = 0.05 * rng.standard_normal(n)
                yield f"{mains} Hz hum {level} dBFS", _at_db(hum, level)
                yield f"{mains} Hz hum + hiss {level} dBFS", _at_db(hum + hiss, level)


# Real speech, clean and in noise.


def _read(clip: Clip) -> np.ndarray:
    y, rate = sf.read(clip.path, dtype="float32", always_2d=True)
    if rate != RATE:
        raise SystemExit(f"{clip.path}: {rate} Hz, expected the corpora at {RATE} Hz")
    return np.asarray(y.mean(axis=1), dtype=np.float32)


def active_power(y: np.ndarray) -> float:
    """Mean power of the 30 ms frames within 30 dB of the loudest one."""
    frame = int(0.03 * RATE)
    frames = y[: y.size // frame * frame].reshape(-1, frame).astype(np.float64)
    power = np.mean(frames**2, axis=1)
    return float(power[power >= power.max() * 1e-3].mean())


def _other_speakers(clips: list[Clip], speaker: str, rng: np.random.Generator, k: int) -> list[int]:
    """Indices of ``k`` distinct clips by speakers other than ``speaker``."""
    chosen: set[int] = set()
    while len(chosen) < k:
        j = int(rng.integers(len(clips)))
        if clips[j].speaker != speaker:
            chosen.add(j)
    return sorted(chosen)


def babble(pool: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """The clips of ``pool`` at equal active level, each looped to ``n`` samples and shifted
    by a random amount, summed: several talkers at once."""
    out = np.zeros(n)
    for y in pool:
        y = np.resize(y, n) / np.sqrt(active_power(y))
        out += np.roll(y, int(rng.integers(n)))
    return out


def with_noise(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    gain = np.sqrt(active_power(y) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    return (y + gain * noise).astype(np.float32)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.2f}% ({count}/{total})" if total else "-"


NOISY = [(name, snr) for name in ("white", "babble") for snr in (10, 5)]


def check_corpora(
    clips: list[Clip], config: VadConfig, *, noisy: bool, seed: int = 0
) -> tuple[str, str]:
    """The real-speech table (with the refused clips) and the speech-in-noise table."""
    rng = np.random.default_rng(seed)
    refused: list[tuple[Clip, dict[str, Any]]] = []
    totals: dict[str, int] = defaultdict(int)
    speech_share: dict[str, list[float]] = defaultdict(list)
    kept: dict[tuple[str, str, int], int] = defaultdict(int)
    audio = [_read(clip) for clip in clips]
    for i, (clip, y) in enumerate(zip(clips, audio, strict=True)):
        totals[clip.corpus] += 1
        result = verdict(y, config)
        speech_share[clip.corpus].append(result["speech_s"] / result["duration_s"])
        if not result["speech"]:
            refused.append((clip, result))
        if noisy:
            pool = [audio[j] for j in _other_speakers(clips, clip.speaker, rng, 6)]
            noises = {"white": rng.standard_normal(y.size), "babble": babble(pool, y.size, rng)}
            for name, snr in NOISY:
                mixed = with_noise(y, noises[name], snr)
                kept[(clip.corpus, name, snr)] += verdict(mixed, config)["speech"]
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1}/{len(clips)} clips", file=sys.stderr)
    names = sorted(totals, key=lambda c: CORPORA.index(c) if c in CORPORA else 99)
    overall = sum(totals.values())
    rows = []
    for corpus in names:
        count = sum(1 for clip, _ in refused if clip.corpus == corpus)
        share = float(np.mean(speech_share[corpus]))
        rows.append([corpus, totals[corpus], _pct(count, totals[corpus]), f"{share:.2f}"])
    rows.append(["all", overall, _pct(len(refused), overall), ""])
    real = _table(["corpus", "clips", "refused", "mean speech_s / duration_s"], rows)
    if refused:
        real += "\n\nRefused clips:\n\n" + _table(
            ["clip", "duration s", "peak dBFS", "voiced s", "voiced level range dB", "why"],
            [
                [
                    f"{clip.corpus}/{clip.path.relative_to(clip.path.parents[1])}",
                    f"{r['duration_s']:.2f}",
                    f"{r['peak_db']:.1f}",
                    f"{r['voiced_s']:.2f}",
                    f"{r['range_db']:.1f}",
                    r["why"],
                ]
                for clip, r in refused
            ],
        )
    if not noisy:
        return real, ""
    head = ["corpus", *(f"{name} {snr} dB" for name, snr in NOISY)]
    noisy_rows = [
        [corpus, *(_pct(kept[(corpus, name, snr)], totals[corpus]) for name, snr in NOISY)]
        for corpus in names
    ]
    noisy_rows.append(
        ["all", *(_pct(sum(kept[(c, n, s)] for c in names), overall) for n, s in NOISY)]
    )
    return real, _table(head, noisy_rows)


def check_non_speech(config: VadConfig, seeds: int = 3) -> str:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    passed: list[str] = []
    for seed in range(seeds):
        for kind, y in non_speech(seed):
            result = verdict(y, config)
            counts[kind][0] += not result["speech"]
            counts[kind][1] += 1
            if result["speech"]:
                passed.append(f"{kind} ({y.size / RATE:g} s): speech_s {result['speech_s']:.2f}")
    rows = [[kind, _pct(refused, total)] for kind, (refused, total) in counts.items()]
    refused_all = sum(c[0] for c in counts.values())
    rows.append(["all", _pct(refused_all, sum(c[1] for c in counts.values()))])
    text = _table(["generated non-speech (1, 2, 3, 5 s)", "refused"], rows)
    if passed:
        text += "\n\nTaken for speech:\n" + "\n".join(f"- {p}" for p in passed)
    return text


def _setting(item: str) -> tuple[str, Any]:
    name, _, value = item.partition("=")
    if name not in VadConfig.__dataclass_fields__:
        raise SystemExit(f"--set {item}: no setting {name!r}")
    parsed = tuple(float(v) for v in value.split(",")) if "," in value else float(value)
    return name, int(parsed) if name == "analysis_rate" else parsed


def _limited(clips: list[Clip], limit: int) -> list[Clip]:
    """At most ``limit`` clips per corpus, picked at random (seeded)."""
    per: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        per[clip.corpus].append(clip)
    pick = np.random.default_rng(1)
    out = []
    for group in per.values():
        chosen = pick.choice(len(group), min(limit, len(group)), replace=False)
        out += [group[i] for i in sorted(chosen)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--limit", type=int, help="at most this many clips per corpus")
    parser.add_argument("--no-noise", action="store_true", help="skip speech in noise")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="try another detector setting (a VadConfig field), e.g. --set voicing=0.6",
    )
    args = parser.parse_args(argv)
    config = replace(DEFAULT_VAD, **dict(_setting(item) for item in args.set))
    tune_allocator()
    print(f"# Speech detector check\n\nSettings: `{config}`\n")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    timing = cost(speech_like(3.0, RATE), config)
    ratio = timing["vad_ms"] / timing["features_ms"]
    print(
        "## Cost on a 3 s clip (one core, medians)\n\n"
        f"detector {timing['vad_ms']:.3f} ms, ser-default's features "
        f"{timing['features_ms']:.3f} ms: ratio {ratio:.2f}\n"
    )
    print("## Generated non-speech (must all be refused)\n")
    print(check_non_speech(config) + "\n")
    if not all((args.data_root / name).is_dir() for name in CORPORA):
        print(f"(corpora not found under {args.data_root}: real-speech checks skipped)")
        return 0
    clips = load_corpora(CORPORA, data_root=args.data_root)
    if args.limit:
        clips = _limited(clips, args.limit)
    real, noisy = check_corpora(clips, config, noisy=not args.no_noise)
    print("## Real speech (should all be kept)\n\n" + real + "\n")
    if noisy:
        print("## Speech in noise: fraction kept\n\n" + noisy + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
