"""Decode audio from bytes or a path into canonical mono float32 at one sample rate.

Everything the model sees goes through :func:`decode_audio`: the trainer and the service call
the same function, so training and serving audio cannot differ. The checks here are shared
with :mod:`service.audio.blocks`, so a recording read block by block is refused for the same
reasons as one read whole.
"""

from __future__ import annotations

import io
import os
import struct
import wave
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from service.audio.errors import (
    AudioError,
    AudioTooLongError,
    UnsupportedFormatError,
    corrupt,
    too_long,
)

#: Canonical rate: 16 kHz is the speech standard (telephony-wideband, ASR corpora) and
#: keeps everything below 8 kHz, where emotional prosody and formants live.
CANONICAL_RATE = 16_000

#: Sanity bounds on what a header may claim, checked before anything is allocated.
MIN_SOURCE_RATE = 1_000
MAX_SOURCE_RATE = 384_000
MAX_CHANNELS = 32
#: Float formats allow any value; beyond this the file is not audio as any recorder writes it,
#: and squaring it in the features would overflow float32.
MAX_ABS_SAMPLE = 1_000.0
#: Shortest clip that gives a meaningful utterance-level feature vector.
MIN_DURATION_S = 0.1

SUPPORTED_FORMATS = ("WAV", "FLAC", "OGG/Vorbis", "OGG/Opus", "MP3", "AIFF", "WebM/Opus", "M4A/AAC")


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded audio: mono float32 ``samples`` of shape ``(n,)`` at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    source_format: str

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO


def open_soundfile(source: Source) -> sf.SoundFile:
    """``source`` opened with libsndfile; :class:`UnsupportedFormatError` if it cannot be."""
    handle: str | os.PathLike[str] | BinaryIO
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioError("The upload is empty (0 bytes).", reason="empty")
        handle = io.BytesIO(bytes(source))
    else:
        handle = source
    try:
        return sf.SoundFile(handle)
    except sf.LibsndfileError as exc:
        raise UnsupportedFormatError(
            "Could not read the data as audio "
            f"(supported: {', '.join(SUPPORTED_FORMATS)}): {exc.error_string.rstrip('.')}."
        ) from exc
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UnsupportedFormatError(f"Could not read the data as audio: {exc}.") from exc


def decode_audio(
    source: Source,
    *,
    target_rate: int = CANONICAL_RATE,
    max_duration_s: float | None = None,
    min_duration_s: float = MIN_DURATION_S,
) -> Audio:
    """Decode ``source`` to mono float32 at ``target_rate``.

    Parameters
    ----------
    source : bytes or path or binary file object
        Encoded audio in any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...),
        any sample rate, any channel count, integer or float samples.
    target_rate : int, keyword-only
        Output sample rate in Hz; resampled with soxr (HQ) when the source differs.
    max_duration_s : float or None, keyword-only
        Reject audio longer than this (:class:`AudioTooLongError`). Only that many
        frames are ever read, whatever the header claims.
    min_duration_s : float, keyword-only
        Reject audio shorter than this.

    Returns
    -------
    Audio
        ``samples`` has shape ``(n,)``, dtype float32, values finite.

    Raises
    ------
    AudioError
        Not audio, truncated, empty, non-finite samples, or an absurd header.
    """
    check_target_rate(target_rate)
    if isinstance(source, bytes | bytearray | memoryview):
        pcm16 = _read_pcm16_wav(source, max_duration_s)
        if pcm16 is not None:
            frames, rate, channels = pcm16
            return _finish(
                mix(frames),
                rate=rate,
                channels=channels,
                fmt="WAV",
                target_rate=target_rate,
                min_duration_s=min_duration_s,
            )
    try:
        handle = open_soundfile(source)
    except UnsupportedFormatError:
        container = sniff_container(source)
        if container is None:
            raise
        # Browsers record WebM/Opus and phones send M4A/AAC; libsndfile reads neither.
        from service.audio.av import decode_with_av

        mono, rate, channels = decode_with_av(
            source,
            container=container,
            max_duration_s=max_duration_s,
            max_rate=MAX_SOURCE_RATE,
            max_channels=MAX_CHANNELS,
        )
        return _finish(
            mono,
            rate=rate,
            channels=channels,
            fmt=container,
            target_rate=target_rate,
            min_duration_s=min_duration_s,
        )
    with handle:
        rate, channels, limit = check_header(handle, max_duration_s)
        fmt = str(handle.format)
        try:
            # Read at most `limit` frames: a header may lie about its length.
            frames = handle.read(
                frames=-1 if limit is None else limit, dtype="float32", always_2d=True
            )
        except READ_ERRORS as exc:
            raise corrupt(exc) from exc
    if limit is not None and frames.shape[0] >= limit:
        raise too_long(max_duration_s)
    return _finish(
        mix(frames),
        rate=rate,
        channels=channels,
        fmt=fmt,
        target_rate=target_rate,
        min_duration_s=min_duration_s,
    )


# Checks shared by decode_audio and the block reader, so both refuse the same input with
# the same reason.

#: What libsndfile's reads raise on broken data.
READ_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, MemoryError)


def check_target_rate(target_rate: int) -> None:
    """Refuse an output rate outside the source bounds (a programming error: ValueError)."""
    if target_rate < MIN_SOURCE_RATE or target_rate > MAX_SOURCE_RATE:
        raise ValueError(
            f"target_rate={target_rate} is outside [{MIN_SOURCE_RATE}, {MAX_SOURCE_RATE}]"
        )


def _read_pcm16_wav(
    data: bytes | bytearray | memoryview, max_duration_s: float | None
) -> tuple[np.ndarray, int, int] | None:
    """Frames ``(n, channels)`` float32, rate and channel count of a plain 16-bit PCM WAV, or
    None for anything else, which libsndfile then reads.

    The upload most clients send, read by the standard library's parser: ~20 us for 3 s of
    16 kHz audio against ~140 us through libsndfile's virtual I/O, with the same samples
    (``x / 32768``, tested). Files with an absurd rate or channel count, or whose data chunk
    claims more than the bytes present, go to libsndfile too, so they keep one behaviour.
    """
    if bytes(data[:4]) != b"RIFF" or bytes(data[8:12]) != b"WAVE":
        return None
    try:
        with wave.open(io.BytesIO(data)) as reader:
            rate, channels = reader.getframerate(), reader.getnchannels()
            claimed, width = reader.getnframes(), reader.getsampwidth()
            sane = MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE and 1 <= channels <= MAX_CHANNELS
            if width != 2 or not sane or claimed * channels * width > len(data):
                return None
            raw = reader.readframes(claimed)
    except (wave.Error, EOFError, struct.error, RuntimeError):
        # Not a WAV the standard library reads (WAVE_FORMAT_EXTENSIBLE, ...), or a malformed
        # one (its chunk reader raises RuntimeError on an impossible seek): libsndfile decides.
        return None
    if len(raw) != claimed * channels * 2:
        return None
    _, _, limit = check_stream(rate, channels, claimed, max_duration_s)
    if limit is not None and claimed >= limit:
        raise too_long(max_duration_s)
    samples = np.frombuffer(raw, dtype="<i2").reshape(claimed, channels)
    # A power-of-two scale: the product is exact, as libsndfile's division.
    return samples.astype(np.float32) * np.float32(1.0 / 32768.0), rate, channels


def check_header(handle: sf.SoundFile, max_duration_s: float | None) -> tuple[int, int, int | None]:
    """The rate, channel count and frame limit of an open file, refused when absurd."""
    return check_stream(
        int(handle.samplerate), int(handle.channels), int(handle.frames), max_duration_s
    )


def check_stream(
    rate: int, channels: int, claimed: int, max_duration_s: float | None
) -> tuple[int, int, int | None]:
    """The rate, channel count and frame limit of a stream claiming ``claimed`` frames,
    refused when absurd."""
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioError(
            f"Sample rate {rate} Hz is outside the supported range "
            f"{MIN_SOURCE_RATE}-{MAX_SOURCE_RATE} Hz.",
            reason="bad_sample_rate",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(
            f"{channels} channels is outside the supported range 1-{MAX_CHANNELS}.",
            reason="bad_channels",
        )
    limit = frame_limit(max_duration_s, rate)
    if limit is not None and claimed > limit:
        raise AudioTooLongError(
            f"Audio is {claimed / rate:.1f} s long; the limit is {max_duration_s:g} s."
        )
    return rate, channels, limit


def frame_limit(max_duration_s: float | None, rate: int) -> int | None:
    """Frames at ``rate`` whose reading proves the audio is over ``max_duration_s``."""
    return None if max_duration_s is None else int(max_duration_s * rate) + 1


def mix(frames: np.ndarray) -> np.ndarray:
    """Mono of shape ``(n,)`` from frames of shape ``(n, channels)``."""
    return frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]


def check_samples(mono: np.ndarray) -> None:
    """Refuse non-finite or absurdly large samples in ``mono`` of shape ``(n,)``, n > 0."""
    if not np.isfinite(mono).all():
        raise AudioError("The audio contains NaN or infinite samples.", reason="non_finite")
    if float(np.abs(mono).max()) > MAX_ABS_SAMPLE:
        raise AudioError(
            f"Sample values exceed ±{MAX_ABS_SAMPLE:g} (full scale is ±1): not a valid recording.",
            reason="out_of_range",
        )


def check_length(frames: int, *, rate: int, min_duration_s: float) -> None:
    """Refuse a stream of ``frames`` samples at ``rate`` that is empty or too short."""
    if frames == 0:
        raise AudioError("The audio contains no samples.", reason="empty")
    if frames / rate < min_duration_s:
        raise AudioError(
            f"Audio is {1000 * frames / rate:.0f} ms long; at least "
            f"{1000 * min_duration_s:.0f} ms is needed.",
            reason="too_short",
        )


def _finish(
    mono: np.ndarray, *, rate: int, channels: int, fmt: str, target_rate: int, min_duration_s: float
) -> Audio:
    """Validate decoded mono samples and bring them to the target rate."""
    if mono.shape[0]:
        check_samples(mono)
    check_length(mono.shape[0], rate=rate, min_duration_s=min_duration_s)
    samples = resample(mono, source_rate=rate, target_rate=target_rate)
    return Audio(
        samples=samples,
        sample_rate=target_rate,
        source_rate=rate,
        source_channels=channels,
        source_format=fmt,
    )


def sniff_container(source: Source) -> str | None:
    """``"WebM"`` or ``"M4A"`` when the first bytes say so; the file name is never trusted."""
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:16])
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            head = handle.read(16)
    else:
        position = source.tell()
        head = source.read(16)
        source.seek(position)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM"
    if head[4:8] == b"ftyp":
        return "M4A"
    return None


def resample(samples: np.ndarray, *, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample mono float32 ``samples`` of shape ``(n,)``; a no-op when rates match."""
    if source_rate == target_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    out = soxr.resample(samples, source_rate, target_rate, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)
