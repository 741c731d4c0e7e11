"""Every feature the trainer learns from and the service serves.

Feature sets are named and versioned (``mfcc40-mean`` is the paper's baseline); the read-only
registry (:mod:`service.features.registry`) holds the ones a supported model may name. Their
full configuration travels in the model's metadata, and the service refuses a model whose
recorded configuration differs from the one defined here, so training and serving features
cannot drift.

Modules: :mod:`~service.features.frontend` (STFT, mel and MFCC in librosa's terms, without
librosa), :mod:`~service.features.mfcc` (the paper's MFCC means),
:mod:`~service.features.speech_stats` (statistics over speech frames, with
:mod:`~service.features.tracks` and :mod:`~service.features.pitch`),
:mod:`~service.features.encoder` (pretrained encoder files, Resemblyzer's speaker encoder),
:mod:`~service.features.whisper` (Whisper tiny.en's encoder), :mod:`~service.features.combined`
(the statistics followed by encoders' outputs).
"""

from service.features.combined import (
    StatsWithEncoder,
    StatsWithEncoderConfig,
    StatsWithEncodersConfig,
)
from service.features.encoder import (
    ENCODER_DIR,
    PACKED_SUFFIX,
    PretrainedEncoder,
    VoiceEncoder,
    VoiceEncoderConfig,
    pack_encoder,
    read_encoder,
    unpack_encoder,
)
from service.features.frontend import (
    FeatureError,
    SpectralConfig,
    SpectralFrontend,
    mel_filterbank,
    periodic_window,
)
from service.features.mfcc import MfccStats, MfccStatsConfig
from service.features.registry import (
    FEATURE_SETS,
    RETIRED_FEATURE_SETS,
    RETIRED_IN,
    FeatureSet,
    config_fingerprint,
    extract_features,
    get_feature_set,
)
from service.features.speech_stats import SpeechStats, SpeechStatsConfig
from service.features.whisper import WhisperEncoder, WhisperEncoderConfig

__all__ = [
    "ENCODER_DIR",
    "FEATURE_SETS",
    "PACKED_SUFFIX",
    "PretrainedEncoder",
    "RETIRED_FEATURE_SETS",
    "RETIRED_IN",
    "FeatureError",
    "FeatureSet",
    "MfccStats",
    "MfccStatsConfig",
    "SpectralConfig",
    "SpectralFrontend",
    "SpeechStats",
    "SpeechStatsConfig",
    "StatsWithEncoder",
    "StatsWithEncoderConfig",
    "StatsWithEncodersConfig",
    "VoiceEncoder",
    "VoiceEncoderConfig",
    "WhisperEncoder",
    "WhisperEncoderConfig",
    "config_fingerprint",
    "extract_features",
    "get_feature_set",
    "mel_filterbank",
    "pack_encoder",
    "periodic_window",
    "read_encoder",
    "unpack_encoder",
]
