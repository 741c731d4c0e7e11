"""Feature sets of the speech statistics followed by pretrained encoders' pooled outputs:
``speech-stats-v2+ge2e-int8`` (the features of ``models/ser-accurate.onnx``) and the sets
with Whisper's encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.features.encoder import VoiceEncoder, VoiceEncoderConfig
from service.features.frontend import FeatureError
from service.features.speech_stats import SpeechStats, SpeechStatsConfig
from service.features.whisper import WhisperEncoder, WhisperEncoderConfig

EncoderConfig = VoiceEncoderConfig | WhisperEncoderConfig
Encoder = VoiceEncoder | WhisperEncoder


@dataclass(frozen=True)
class StatsWithEncoderConfig:
    """Utterance statistics, then Resemblyzer's speaker encoder's pooled outputs.

    The first form, kept as it is: ``models/ser-accurate.onnx`` records this ``to_dict()``.
    Other combinations use :class:`StatsWithEncodersConfig`.
    """

    name: str
    version: int
    statistics: SpeechStatsConfig
    encoder: VoiceEncoderConfig

    @property
    def encoders(self) -> tuple[EncoderConfig, ...]:
        return (self.encoder,)

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The encoders' column name prefixes, in order."""
        return ("encoder",)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "speech-stats+voice-encoder",
            "name": self.name,
            "version": self.version,
            "statistics": self.statistics.to_dict(),
            "encoder": self.encoder.to_dict(),
        }


@dataclass(frozen=True)
class StatsWithEncodersConfig:
    """Utterance statistics, then each pretrained encoder's pooled outputs, in order (each
    kind at most once)."""

    name: str
    version: int
    statistics: SpeechStatsConfig
    encoders: tuple[EncoderConfig, ...]

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The encoders' column name prefixes (their kinds), in order."""
        return tuple(encoder.KIND for encoder in self.encoders)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "speech-stats+encoders",
            "name": self.name,
            "version": self.version,
            "statistics": self.statistics.to_dict(),
            "encoders": [{"kind": e.KIND, **e.to_dict()} for e in self.encoders],
        }


def make_encoder(config: EncoderConfig) -> Encoder:
    """The runtime of an encoder configuration."""
    if isinstance(config, WhisperEncoderConfig):
        return WhisperEncoder(config)
    return VoiceEncoder(config)


class StatsWithEncoder:
    """:class:`SpeechStats` followed by pretrained encoders' outputs, shape ``(dim,)``.

    Several times the statistics' cost (a network over every frame of the clip): the features
    of opt-in models for when accuracy on many voices matters more than throughput.
    """

    def __init__(self, config: StatsWithEncoderConfig | StatsWithEncodersConfig) -> None:
        prefixes = config.prefixes
        if not prefixes or len(set(prefixes)) != len(prefixes):
            raise FeatureError(f"each encoder kind at most once, at least one, not {prefixes}")
        self.config = config
        self.statistics = SpeechStats(config.statistics)
        self.encoders: tuple[Encoder, ...] = tuple(make_encoder(c) for c in config.encoders)
        for encoder in self.encoders:
            if encoder.config.spectral.sample_rate != self.sample_rate:
                raise FeatureError("the statistics and the encoders must run at one rate")
        # The statistics' front end: what callers that inspect a feature set's spectra see.
        self.frontend = self.statistics.frontend

    @property
    def encoder(self) -> Encoder:
        """The first encoder (the only one of ``speech-stats-v2+ge2e-int8``)."""
        return self.encoders[0]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sample_rate(self) -> int:
        return self.config.statistics.spectral.sample_rate

    @property
    def dim(self) -> int:
        return self.statistics.dim + sum(encoder.dim for encoder in self.encoders)

    def names(self) -> list[str]:
        names = self.statistics.names()
        for prefix, encoder in zip(self.config.prefixes, self.encoders, strict=True):
            names += encoder.names(prefix)
        return names

    def prepare(self) -> None:
        """Load the encoders now (and check their files), not on the first clip."""
        for encoder in self.encoders:
            encoder.session()

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        parts = [self.statistics.extract(samples)]
        parts += [encoder.extract(samples) for encoder in self.encoders]
        return np.concatenate(parts)

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()
