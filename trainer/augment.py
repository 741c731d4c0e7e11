"""Audio augmentation for training and for the noise benchmark.

Augmentations act on decoded canonical-rate audio, before the one feature module, so an
augmented clip is featurised exactly like a served one. Each is named by a short spec string
(part of the feature cache key): ``speed0.9``, ``gain-6``, ``white@10`` (white noise at 10 dB
SNR), ``babble@5`` (several other talkers at 5 dB SNR), ``reverb0.3`` (a 0.3 s RT60 room),
``eq@9`` (a random smooth microphone-and-channel response up to 9 dB from flat).
A range ``white@0:30`` draws the value uniformly per clip (a model trained at one fixed SNR
learns that SNR, not robustness), and ``+`` chains steps: ``speed1.1+babble@5:30``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.signal
import soxr

from service.audio import decode_audio

_NUMBER = r"-?\d+(?:\.\d+)?"
_SPEC = re.compile(
    rf"^(?P<kind>speed|gain|white|babble|reverb|eq)@?(?P<value>{_NUMBER})(?::(?P<high>{_NUMBER}))?$"
)


class AugmentError(ValueError):
    """An augmentation spec that cannot be parsed or applied."""


def parse(spec: str) -> tuple[str, float]:
    """``(kind, value)`` of a single fixed-value step such as ``white@10``."""
    kind, low, high = parse_range(spec)
    if high != low:
        raise AugmentError(f"{spec!r} is a range; draw a value with apply()")
    return kind, low


def parse_range(spec: str) -> tuple[str, float, float]:
    """``(kind, low, high)`` of one step; ``low == high`` for a fixed value."""
    match = _SPEC.match(spec)
    if not match:
        raise AugmentError(
            f"bad augmentation {spec!r}: use speed0.9, gain-6, white@10, white@0:30, "
            "babble@10, reverb0.3, eq@9, or steps joined by +"
        )
    low = float(match["value"])
    high = float(match["high"]) if match["high"] is not None else low
    if high < low:
        raise AugmentError(f"bad range in {spec!r}: {high:g} < {low:g}")
    return match["kind"], low, high


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
    """``signal + k * noise`` with ``k`` chosen so the power ratio is ``snr_db``; shape ``(n,)``."""
    if noise.shape[0] < signal.shape[0]:
        noise = np.resize(noise, signal.shape[0])
    noise = noise[: signal.shape[0]]
    p_signal = float(np.mean(signal.astype(np.float64) ** 2))
    p_noise = float(np.mean(noise.astype(np.float64) ** 2)) or 1e-12
    scale = np.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return (signal + scale * noise).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _talker(path: str, sample_rate: int) -> np.ndarray:
    """A babble source, decoded once per process (every augmented clip mixes the same few)."""
    samples = decode_audio(path, target_rate=sample_rate).samples.astype(np.float64)
    samples.flags.writeable = False
    return samples


def babble_noise(
    sources: Sequence[Path], *, length: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Sum of several talkers (random offsets, equal power), shape ``(length,)``."""
    mix = np.zeros(length, dtype=np.float64)
    for path in sources:
        talker = _talker(str(path), sample_rate)
        talker = np.roll(np.resize(talker, length), int(rng.integers(0, length)))
        mix += talker / (np.sqrt(np.mean(talker**2)) + 1e-9)
    return mix.astype(np.float32)


def channel_response_db(
    freqs: np.ndarray, *, max_db: float, rng: np.random.Generator
) -> np.ndarray:
    """A random smooth frequency response in dB, shape like ``freqs`` (Hz), peak ``|max_db|``.

    A spectral tilt plus three bumps or dips on a log-frequency axis (0.3-1.2 octaves wide,
    centred between 100 Hz and 6 kHz): the shape of a microphone, a handset or a room
    colouring, which moves every spectral statistic of a clip without touching its prosody.
    """
    octaves = np.log2(np.maximum(freqs, 50.0) / 1000.0)
    response = rng.uniform(-1.0, 1.0) * octaves
    for _ in range(3):
        centre = rng.uniform(np.log2(0.1), np.log2(6.0))
        width = rng.uniform(0.3, 1.2)
        response += rng.uniform(-1.0, 1.0) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    peak = float(np.abs(response).max())
    return response * (max_db / peak) if peak > 0 else response


def apply(
    samples: np.ndarray,
    spec: str,
    *,
    sample_rate: int,
    seed: int,
    babble_sources: Sequence[Path] = (),
) -> np.ndarray:
    """Apply an augmentation to mono ``samples`` of shape ``(n,)``; deterministic in ``seed``.

    ``spec`` is one step or several joined by ``+``, applied left to right, each with its own
    seed derived from ``seed``.
    """
    steps = spec.split("+")
    if len(steps) > 1:
        seeds = np.random.SeedSequence(seed).generate_state(len(steps))
        for step, step_seed in zip(steps, seeds, strict=True):
            samples = apply(
                samples,
                step,
                sample_rate=sample_rate,
                seed=int(step_seed),
                babble_sources=babble_sources,
            )
        return samples
    kind, low, high = parse_range(spec)
    rng = np.random.default_rng(seed)
    value = low if high == low else float(rng.uniform(low, high))
    if kind == "speed":
        # Resampling and playing back at the original rate changes tempo and pitch together,
        # like a different vocal tract and speaking rate (Ko et al., 2015).
        out = soxr.resample(samples, sample_rate, int(round(sample_rate / value)), quality="HQ")
        return np.asarray(out, dtype=np.float32)
    if kind == "gain":
        return np.clip(samples * 10 ** (value / 20), -1.0, 1.0, dtype=np.float32)
    if kind == "white":
        return mix_at_snr(
            samples,
            np.asarray(rng.standard_normal((samples.shape[0],)), dtype=np.float32),
            snr_db=value,
        )
    if kind == "babble":
        if len(babble_sources) == 0:
            raise AugmentError("babble needs babble_sources")
        noise = babble_noise(
            babble_sources, length=samples.shape[0], sample_rate=sample_rate, rng=rng
        )
        return mix_at_snr(samples, noise, snr_db=value)
    if kind == "eq":
        # Zero-phase filtering of the whole clip, level kept: only the spectral shape changes.
        spectrum = np.fft.rfft(samples.astype(np.float64))
        freqs = np.fft.rfftfreq(samples.shape[0], 1.0 / sample_rate)
        spectrum *= 10 ** (channel_response_db(freqs, max_db=value, rng=rng) / 20)
        out = np.fft.irfft(spectrum, n=samples.shape[0])
        out *= np.sqrt(np.mean(samples.astype(np.float64) ** 2) / (np.mean(out**2) + 1e-20))
        return np.clip(out, -1.0, 1.0).astype(np.float32)
    # reverb: exponentially decaying noise impulse response with the given RT60 in seconds.
    n = max(1, int(value * sample_rate))
    t = np.arange(n) / sample_rate
    impulse = rng.standard_normal(n) * np.exp(-6.9 * t / value)
    impulse[0] = 1.0
    wet = scipy.signal.fftconvolve(samples, impulse)[: samples.shape[0]]
    wet *= np.sqrt(np.mean(samples**2) / (np.mean(wet**2) + 1e-12))
    return wet.astype(np.float32)
