"""The one feature module: every feature the trainer learns from and the service serves.

Feature sets are named and versioned (``mfcc40-mean`` is the paper's baseline). Their
full configuration travels in the model's metadata, and the service refuses a model
whose recorded configuration differs from the one defined here, so training and
serving features cannot drift.

The spectral front end is librosa's (its mel filterbank, its dB scaling, its DCT), computed
with precomputed matrices and one batched real FFT; ``tests/test_features.py`` checks it
against ``librosa.feature.mfcc`` within a stated tolerance.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.fft
import scipy.signal

from service.audio import CANONICAL_RATE


class FeatureError(ValueError):
    """Features cannot be computed for this input or configuration."""


@dataclass(frozen=True)
class SpectralConfig:
    """STFT and mel front end, in librosa's terms (``librosa.feature.melspectrogram``)."""

    sample_rate: int = CANONICAL_RATE
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    mel_htk: bool = False
    mel_norm: str = "slaney"
    # power_to_db(ref=1.0, amin=1e-10, top_db=80.0), librosa's defaults.
    db_amin: float = 1e-10
    top_db: float | None = 80.0


@dataclass(frozen=True)
class MfccStatsConfig:
    """Utterance-level MFCC statistics."""

    name: str
    version: int
    spectral: SpectralConfig
    n_mfcc: int = 40
    statistics: tuple[str, ...] = ("mean",)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = "mfcc-stats"
        out["statistics"] = list(self.statistics)
        return out


class MfccStats:
    """MFCCs of the whole utterance pooled over time into one vector.

    Output shape is ``(n_mfcc * len(statistics),)``, statistics concatenated in order.
    """

    def __init__(self, config: MfccStatsConfig) -> None:
        unknown = set(config.statistics) - {"mean", "std"}
        if unknown:
            raise FeatureError(f"unknown statistics {sorted(unknown)}")
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sample_rate(self) -> int:
        return self.config.spectral.sample_rate

    @property
    def dim(self) -> int:
        return self.config.n_mfcc * len(self.config.statistics)

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    @cached_property
    def _window(self) -> np.ndarray:
        spec = self.config.spectral
        win = scipy.signal.get_window(spec.window, spec.win_length, fftbins=True)
        left = (spec.n_fft - spec.win_length) // 2
        padded = np.zeros(spec.n_fft, dtype=np.float64)
        padded[left : left + spec.win_length] = win
        return padded.astype(np.float32)

    @cached_property
    def _mel_dct(self) -> tuple[np.ndarray, np.ndarray]:
        import librosa  # only the filterbank; imported lazily to keep start-up cheap

        spec = self.config.spectral
        mel = librosa.filters.mel(
            sr=spec.sample_rate,
            n_fft=spec.n_fft,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
            htk=spec.mel_htk,
            norm=spec.mel_norm,
            dtype=np.float32,
        )
        dct = scipy.fft.dct(np.eye(spec.n_mels), type=2, norm="ortho", axis=0)[: self.config.n_mfcc]
        # Transposed so frames @ matrix works on (frames, bins) without copies.
        return np.ascontiguousarray(mel.T), np.ascontiguousarray(dct.T.astype(np.float32))

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """MFCC matrix of shape ``(frames, n_mfcc)`` for mono ``samples`` of shape ``(n,)``."""
        spec = self.config.spectral
        y = _validated(samples)
        if spec.center:
            y = np.pad(y, spec.n_fft // 2, mode=spec.pad_mode)  # type: ignore[call-overload]
        if y.shape[0] < spec.n_fft:
            raise FeatureError(f"signal of {samples.shape[0]} samples is shorter than n_fft")
        frames = np.lib.stride_tricks.sliding_window_view(y, spec.n_fft)[:: spec.hop_length]
        stft = np.fft.rfft(frames * self._window, axis=1)
        power = np.abs(stft).astype(np.float32) ** spec.power
        mel_t, dct_t = self._mel_dct
        mel = power @ mel_t
        db = 10.0 * np.log10(np.maximum(mel, spec.db_amin))
        if spec.top_db is not None:
            db = np.maximum(db, db.max() - spec.top_db)
        return (db @ dct_t).astype(np.float32)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        mfcc = self.mfcc(samples)
        parts = []
        for stat in self.config.statistics:
            parts.append(mfcc.mean(axis=0) if stat == "mean" else mfcc.std(axis=0))
        return np.concatenate(parts).astype(np.float32)


def _validated(samples: np.ndarray) -> np.ndarray:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise FeatureError("samples must be a 1-D numpy array (mono)")
    if samples.shape[0] == 0:
        raise FeatureError("samples are empty")
    y = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(y).all():
        raise FeatureError("samples contain NaN or infinity")
    return y


FeatureSet = MfccStats

#: The registry. A model names its feature set; the service looks it up here.
FEATURE_SETS: dict[str, FeatureSet] = {
    # The paper: librosa.feature.mfcc(n_mfcc=40) with librosa's defaults, mean over time.
    "mfcc40-mean": MfccStats(
        MfccStatsConfig(name="mfcc40-mean", version=1, spectral=SpectralConfig(), n_mfcc=40)
    ),
}


def get_feature_set(name: str) -> FeatureSet:
    """The registered feature set called ``name``; :class:`FeatureError` if unknown."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise FeatureError(
            f"unknown feature set {name!r}; known: {', '.join(sorted(FEATURE_SETS))}"
        ) from None


def extract_features(samples: np.ndarray, *, feature_set: str) -> np.ndarray:
    """Feature vector of shape ``(dim,)`` for canonical-rate mono ``samples``."""
    return get_feature_set(feature_set).extract(samples)


def config_fingerprint(config: dict[str, Any]) -> str:
    """Canonical JSON of a feature configuration, for equality checks and cache keys."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
