"""Long recordings read block by block: the samples of :func:`~service.audio.decode_audio`,
a block at a time, refused for the same reasons, with memory that does not grow with length."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from service.audio.decode import (
    CANONICAL_RATE,
    MAX_CHANNELS,
    MAX_SOURCE_RATE,
    MIN_DURATION_S,
    READ_ERRORS,
    Source,
    check_header,
    check_length,
    check_samples,
    check_target_rate,
    mix,
    open_soundfile,
    sniff_container,
)
from service.audio.errors import UnsupportedFormatError, corrupt, too_long

#: Source seconds per block in :func:`iter_audio_blocks`: long enough that per-block overhead
#: is negligible, short enough that a block of 48 kHz stereo is 384 KB of float32.
BLOCK_S = 1.0
#: Interleaved values per block at most, so a 32-channel 384 kHz source cannot make one block
#: large (2**20 float32 values: 4 MB).
MAX_BLOCK_VALUES = 1 << 20


@dataclass(frozen=True, slots=True)
class AudioBlocks:
    """An open recording read block by block: see :func:`open_audio_blocks`.

    ``blocks`` yields mono float32 arrays of shape ``(m,)``, ``m > 0``, at ``sample_rate``.
    """

    blocks: Iterator[np.ndarray]
    sample_rate: int
    source_rate: int
    source_channels: int
    source_format: str


@contextmanager
def open_audio_blocks(
    source: Source,
    *,
    target_rate: int = CANONICAL_RATE,
    block_s: float = BLOCK_S,
    max_duration_s: float | None = None,
    min_duration_s: float = MIN_DURATION_S,
) -> Iterator[AudioBlocks]:
    """Open ``source`` for decoding block by block to mono float32 at ``target_rate``.

    The concatenated blocks equal :func:`decode_audio`'s ``samples`` (soxr's stream and
    one-shot resamplers give the same output), but only about one block of the source is
    held at a time, so memory does not grow with the length of the recording.

    Parameters
    ----------
    source : bytes or path or binary file object
        As for :func:`decode_audio`, including WebM/Opus and M4A/AAC.
    target_rate : int, keyword-only
        Output sample rate in Hz; resampled with a soxr (HQ) stream when the source differs.
    block_s : float, keyword-only
        Source seconds read per block (capped at :data:`MAX_BLOCK_VALUES` interleaved
        values). Yielded blocks vary in length around ``block_s * target_rate`` samples.
    max_duration_s : float or None, keyword-only
        Reject audio longer than this (:class:`AudioTooLongError`).
    min_duration_s : float, keyword-only
        Reject audio shorter than this.

    Yields
    ------
    AudioBlocks
        The header (checked on entry) and the iterator of blocks; the file is closed on exit.

    Raises
    ------
    AudioError
        The same errors, with the same ``reason``, as :func:`decode_audio`. Header faults are
        raised on entry. A fault found part-way (corrupt data, non-finite samples, over the
        limit, too short) is raised by the iterator when it is met, after the blocks before
        it were yielded: consume the whole iterator before acting on what it gave.
    """
    check_target_rate(target_rate)
    if block_s <= 0:
        raise ValueError(f"block_s={block_s} must be positive")
    with _open_stream(source, block_s=block_s, max_duration_s=max_duration_s) as stream:
        yield AudioBlocks(
            blocks=_canonical(
                stream.chunks,
                rate=stream.rate,
                target_rate=target_rate,
                min_duration_s=min_duration_s,
            ),
            sample_rate=target_rate,
            source_rate=stream.rate,
            source_channels=stream.channels,
            source_format=stream.fmt,
        )


def iter_audio_blocks(
    source: Source,
    *,
    target_rate: int = CANONICAL_RATE,
    block_s: float = BLOCK_S,
    max_duration_s: float | None = None,
    min_duration_s: float = MIN_DURATION_S,
) -> Iterator[np.ndarray]:
    """The blocks of :func:`open_audio_blocks` (same parameters), opening ``source`` lazily.

    Yields
    ------
    numpy.ndarray
        Shape ``(m,)``, dtype float32, values finite; ``m > 0``.
    """
    with open_audio_blocks(
        source,
        target_rate=target_rate,
        block_s=block_s,
        max_duration_s=max_duration_s,
        min_duration_s=min_duration_s,
    ) as stream:
        yield from stream.blocks


def _canonical(
    chunks: Iterator[np.ndarray], *, rate: int, target_rate: int, min_duration_s: float
) -> Iterator[np.ndarray]:
    """Checked mono ``chunks`` at ``rate`` brought to ``target_rate``."""
    resampler = (
        None
        if rate == target_rate
        else soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    )
    frames = 0
    for mono in chunks:
        check_samples(mono)
        frames += mono.shape[0]
        out = mono if resampler is None else resampler.resample_chunk(mono)
        if out.shape[0]:
            yield out
    check_length(frames, rate=rate, min_duration_s=min_duration_s)
    if resampler is not None:
        # The resampler holds back its filter's delay until told the input has ended.
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.shape[0]:
            yield tail


@dataclass(frozen=True, slots=True)
class _Stream:
    chunks: Iterator[np.ndarray]  # mono float32 at `rate`, shape (m,)
    rate: int
    channels: int
    fmt: str


@contextmanager
def _open_stream(
    source: Source, *, block_s: float, max_duration_s: float | None
) -> Iterator[_Stream]:
    """``source`` opened with libsndfile, or PyAV for WebM/M4A, its header checked."""
    try:
        handle = open_soundfile(source)
    except UnsupportedFormatError:
        container = sniff_container(source)
        if container is None:
            raise
        from service.audio.av import AvDecoder

        with AvDecoder(
            source, container=container, max_rate=MAX_SOURCE_RATE, max_channels=MAX_CHANNELS
        ) as decoder:
            size = _block_frames(block_s, decoder.rate, decoder.channels)
            # Codec frames are 10-60 ms; gathering them keeps per-block overhead down.
            chunks = _gather(decoder.blocks(max_duration_s=max_duration_s), size)
            yield _Stream(chunks, decoder.rate, decoder.channels, container)
        return
    with handle:
        rate, channels, limit = check_header(handle, max_duration_s)
        size = _block_frames(block_s, rate, channels)
        chunks = _read_blocks(handle, size=size, limit=limit, max_duration_s=max_duration_s)
        yield _Stream(chunks, rate, channels, str(handle.format))


def _read_blocks(
    handle: sf.SoundFile, *, size: int, limit: int | None, max_duration_s: float | None
) -> Iterator[np.ndarray]:
    """Mono chunks of ``size`` frames read from ``handle``; stops at ``limit`` like
    :func:`decode_audio`'s single read does."""
    read = 0
    while True:
        wanted = size if limit is None else min(size, limit - read)
        try:
            frames = handle.read(frames=wanted, dtype="float32", always_2d=True)
        except READ_ERRORS as exc:
            raise corrupt(exc) from exc
        read += frames.shape[0]
        if limit is not None and read >= limit:
            raise too_long(max_duration_s)
        if frames.shape[0]:
            yield mix(frames)
        # libsndfile fills a read unless the data ended (or broke): a single read would
        # have stopped here too.
        if frames.shape[0] < wanted:
            return


def _gather(chunks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Concatenate consecutive ``chunks`` into pieces of at least ``size`` samples."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += chunk.shape[0]
        if held >= size:
            yield np.concatenate(pending)
            pending, held = [], 0
    if held:
        yield np.concatenate(pending)


def _block_frames(block_s: float, rate: int, channels: int) -> int:
    return max(1, min(int(block_s * rate), MAX_BLOCK_VALUES // channels))
