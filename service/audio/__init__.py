"""Audio in: any supported file or upload to canonical mono float32 at one sample rate.

:func:`decode_audio` decodes a clip whole (:mod:`service.audio.decode`);
:func:`open_audio_blocks` and :func:`iter_audio_blocks` give the same samples a block at a
time for long recordings (:mod:`service.audio.blocks`); WebM/Opus and M4A/AAC, which
libsndfile cannot read, go through PyAV (:mod:`service.audio.av`). Every refusal is an
:class:`AudioError` with a machine-readable ``reason`` (:mod:`service.audio.errors`).
"""

from service.audio.blocks import (
    BLOCK_S,
    MAX_BLOCK_VALUES,
    AudioBlocks,
    iter_audio_blocks,
    open_audio_blocks,
)
from service.audio.decode import (
    CANONICAL_RATE,
    MAX_ABS_SAMPLE,
    MAX_CHANNELS,
    MAX_SOURCE_RATE,
    MIN_DURATION_S,
    MIN_SOURCE_RATE,
    SUPPORTED_FORMATS,
    Audio,
    Source,
    decode_audio,
    frame_limit,
    resample,
    sniff_container,
)
from service.audio.errors import AudioError, AudioTooLongError, UnsupportedFormatError

__all__ = [
    "BLOCK_S",
    "CANONICAL_RATE",
    "MAX_ABS_SAMPLE",
    "MAX_BLOCK_VALUES",
    "MAX_CHANNELS",
    "MAX_SOURCE_RATE",
    "MIN_DURATION_S",
    "MIN_SOURCE_RATE",
    "SUPPORTED_FORMATS",
    "Audio",
    "AudioBlocks",
    "AudioError",
    "AudioTooLongError",
    "Source",
    "UnsupportedFormatError",
    "decode_audio",
    "frame_limit",
    "iter_audio_blocks",
    "open_audio_blocks",
    "resample",
    "sniff_container",
]
