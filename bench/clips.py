"""The benchmarks' input audio: a speech-like clip of any length and rate, encoded."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from service.audio import resample
from trainer.corpora import default_data_root


def speech_like(seconds: float, rate: int) -> np.ndarray:
    """Real speech (a TESS clip, tiled) when the corpus is there; a harmonic tone otherwise."""
    source = default_data_root() / "tess" / "YAF_happy" / "YAF_ring_happy.flac"
    if source.exists():
        y, sr = sf.read(source, dtype="float32")
        y = resample(y, source_rate=sr, target_rate=rate)
    else:
        t = np.arange(rate) / rate
        y = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return np.resize(y, int(seconds * rate)).astype(np.float32)


def encode(y: np.ndarray, rate: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()
