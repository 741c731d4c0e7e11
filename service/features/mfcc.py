"""The paper's features: MFCCs of the whole utterance pooled over time (``mfcc40-mean``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.features.frontend import FeatureError, SpectralConfig, UtteranceFeatures


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


class MfccStats(UtteranceFeatures):
    """MFCCs of the whole utterance pooled over time into one vector.

    Output shape is ``(n_mfcc * len(statistics),)``, statistics concatenated in order.
    """

    config: MfccStatsConfig

    def __init__(self, config: MfccStatsConfig) -> None:
        unknown = set(config.statistics) - {"mean", "std"}
        if unknown:
            raise FeatureError(f"unknown statistics {sorted(unknown)}")
        super().__init__(config)

    @property
    def dim(self) -> int:
        return self.config.n_mfcc * len(self.config.statistics)

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """MFCC matrix of shape ``(frames, n_mfcc)`` for mono ``samples`` of shape ``(n,)``."""
        return self.frontend.mfcc(samples)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        mfcc = self.mfcc(samples)
        parts = []
        for stat in self.config.statistics:
            parts.append(mfcc.mean(axis=0) if stat == "mean" else mfcc.std(axis=0))
        return np.concatenate(parts).astype(np.float32)
