"""The feature sets a supported model may name, read-only.

A model records its feature set's name and full configuration; the service looks the name up
here and refuses the model if the configurations differ, so training and serving features
cannot drift. The registry holds what a bundled model or a ``ser-train`` recipe uses, nothing
else: experiments build their variants as configuration objects instead of registering them.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import numpy as np

from service.features.combined import (
    StatsWithEncoder,
    StatsWithEncoderConfig,
    StatsWithEncodersConfig,
)
from service.features.encoder import VoiceEncoderConfig
from service.features.frontend import FeatureError, SpectralConfig
from service.features.mfcc import MfccStats, MfccStatsConfig
from service.features.speech_stats import SpeechStats, SpeechStatsConfig
from service.features.whisper import WhisperEncoderConfig

FeatureSet = MfccStats | SpeechStats | StatsWithEncoder

#: The service release that retired the sets in :data:`RETIRED_FEATURE_SETS`.
RETIRED_IN = "0.2.0"

#: Feature sets earlier releases served, and why they left: a model naming one is refused
#: with this reason instead of as an unknown name.
RETIRED_FEATURE_SETS: MappingProxyType[str, str] = MappingProxyType(
    {
        "speech-stats-v1": (
            "superseded by speech-stats-v2, the same statistics at about 60% of the cost plus "
            "voice quality and a noise-floor gate"
        ),
        "speech-stats-v2+ge2e": (
            "its float speaker encoder no longer ships; speech-stats-v2+ge2e-int8 runs the same "
            "encoder with two layers in int8"
        ),
    }
)

#: 25 ms windows every 10 ms, the speech standard.
_SPEECH_FRONT_END = SpectralConfig(
    n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=50.0, fmax=8000.0
)

# Written out in full, not left to the defaults: the registered configuration is a model
# contract, which a change of default must not move.
# Version 2: the statistics of version 1 at about 60% of its cost (bench/speed.py: pitch at
# 8 kHz on speech frames every 20 ms, flatness over mel bands), plus voicing strength, F0
# movement and a noise-floor test in the speech gate.
_SPEECH_STATS_V2 = SpeechStatsConfig(
    name="speech-stats-v2",
    version=2,
    spectral=_SPEECH_FRONT_END,
    pitch_rate=8000,
    pitch_hop=320,
    flatness_on="mel",
    voice_quality=True,
    floor_margin_db=6.0,
)

#: The registry. A model names its feature set; the service looks it up here.
FEATURE_SETS: MappingProxyType[str, FeatureSet] = MappingProxyType(
    {
        # The paper: librosa.feature.mfcc(n_mfcc=40) with librosa's defaults, mean over time.
        "mfcc40-mean": MfccStats(
            MfccStatsConfig(name="mfcc40-mean", version=1, spectral=SpectralConfig(), n_mfcc=40)
        ),
        # Pooled over speech frames only: models/ser-default.onnx.
        "speech-stats-v2": SpeechStats(_SPEECH_STATS_V2),
        # speech-stats-v2, then Resemblyzer's pretrained speaker encoder (d-vector, frame mean
        # and spread of its last layer), its second and third LSTM layers in int8: +9 points on
        # unseen RAVDESS actors for the float encoder, at twelve times the cost; the int8
        # outputs are within 0.997 correlation of the float encoder's, the LSTM in 0.58 of its
        # time (docs/experiments.md). The features of the opt-in models/ser-accurate.onnx.
        "speech-stats-v2+ge2e-int8": StatsWithEncoder(
            StatsWithEncoderConfig(
                name="speech-stats-v2+ge2e-int8",
                version=1,
                statistics=_SPEECH_STATS_V2,
                encoder=VoiceEncoderConfig(),
            )
        ),
        # speech-stats-v2, then Whisper tiny.en's encoder cut after layer 3 in int8, the mean
        # and spread over time of layers 2 and 3, each clip encoded at its own length: on
        # unseen RAVDESS actors 74% UA with a linear probe against 69% for the encoder's final
        # output (experiments/whisper/README.md); leaving one corpus out, a linear probe's mean
        # UA 46.0 against 39.3 for speech-stats-v2+ge2e-int8, at about the same cost (7 ms for
        # a 3 s clip); with GE2E's outputs appended too, 44.9 at twice the cost
        # (experiments/feature_probe_loco.py).
        "speech-stats-v2+whisper-l23-int8": StatsWithEncoder(
            StatsWithEncodersConfig(
                name="speech-stats-v2+whisper-l23-int8",
                version=1,
                statistics=_SPEECH_STATS_V2,
                encoders=(WhisperEncoderConfig(),),
            )
        ),
    }
)


def get_feature_set(name: str) -> FeatureSet:
    """The registered feature set called ``name``.

    Raises
    ------
    FeatureError
        If ``name`` is not registered; the message says so, and why, for a retired set.
    """
    try:
        return FEATURE_SETS[name]
    except KeyError:
        if name in RETIRED_FEATURE_SETS:
            raise FeatureError(
                f"feature set {name!r} was retired in service {RETIRED_IN}: "
                f"{RETIRED_FEATURE_SETS[name]}"
            ) from None
        raise FeatureError(
            f"unknown feature set {name!r}; known: {', '.join(sorted(FEATURE_SETS))}"
        ) from None


def extract_features(samples: np.ndarray, *, feature_set: str) -> np.ndarray:
    """Feature vector of shape ``(dim,)`` for canonical-rate mono ``samples``."""
    return get_feature_set(feature_set).extract(samples)


def config_fingerprint(config: dict[str, Any]) -> str:
    """Canonical JSON of a feature configuration, for equality checks and cache keys."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
