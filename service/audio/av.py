"""WebM/Opus and M4A/AAC through PyAV (FFmpeg's decoders, shipped inside the wheel): the
fallback for the containers libsndfile cannot read."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import numpy as np

from service.audio.decode import MIN_SOURCE_RATE, Source, frame_limit
from service.audio.errors import AudioError, too_long


@contextmanager
def _audio_errors(container: str) -> Iterator[None]:
    """Report FFmpeg's failures as :class:`AudioError` (reason ``corrupt``)."""
    import av

    try:
        yield
    except AudioError:  # a ValueError too, and already a precise one
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise AudioError(
            f"The {container} data is corrupt or truncated: {exc}.", reason="corrupt"
        ) from exc


class AvDecoder:
    """An open WebM or M4A file whose first audio stream decodes to mono float32.

    Parameters
    ----------
    source : bytes or path or binary file object
        The encoded file.
    container : str
        ``"WebM"`` or ``"M4A"``, for messages.
    max_rate, max_channels : int
        Bounds on what the stream may declare.

    Attributes
    ----------
    rate, channels : int
        The stream's sample rate and channel count, checked against the bounds.
    """

    def __init__(self, source: Source, *, container: str, max_rate: int, max_channels: int) -> None:
        import av

        self._av = av
        self.container = container
        handle = (
            io.BytesIO(bytes(source))
            if isinstance(source, bytes | bytearray | memoryview)
            else source
        )
        with _audio_errors(container):
            self._media: Any = av.open(
                handle if not isinstance(handle, os.PathLike) else str(handle), mode="r"
            )
        try:
            with _audio_errors(container):
                streams = self._media.streams.audio
                if not streams:
                    raise AudioError(
                        f"The {container} file has no audio stream.", reason="no_audio"
                    )
                self._stream = streams[0]
                self.rate = int(self._stream.codec_context.sample_rate or 0)
                self.channels = int(self._stream.codec_context.channels or 0)
            if (
                not MIN_SOURCE_RATE <= self.rate <= max_rate
                or not 1 <= self.channels <= max_channels
            ):
                raise AudioError(
                    f"{container} audio at {self.rate} Hz with {self.channels} channels "
                    "is out of range.",
                    reason="bad_header",
                )
        except BaseException:
            self.close()
            raise

    def blocks(self, *, max_duration_s: float | None) -> Iterator[np.ndarray]:
        """Mono float32 chunks at :attr:`rate`, shape ``(m,)``, one or more per codec frame.

        Raises
        ------
        AudioTooLongError
            Once more than ``max_duration_s`` has been decoded.
        AudioError
            Corrupt or truncated data (reason ``corrupt``).
        """
        limit = frame_limit(max_duration_s, self.rate)
        total = 0
        with _audio_errors(self.container):
            # Mixing to mono at the source rate here; the caller resamples with soxr.
            resampler = self._av.AudioResampler(format="flt", layout="mono", rate=self.rate)
            for frame in self._media.decode(self._stream):
                chunks = [_samples(mono) for mono in resampler.resample(frame)]
                total += sum(chunk.shape[0] for chunk in chunks)
                if limit is not None and total >= limit:
                    raise too_long(max_duration_s)
                yield from chunks
            for mono in resampler.resample(None):
                yield _samples(mono)

    def close(self) -> None:
        self._media.close()

    def __enter__(self) -> AvDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _samples(frame: Any) -> np.ndarray:
    return frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def decode_with_av(
    source: Source,
    *,
    container: str,
    max_duration_s: float | None,
    max_rate: int,
    max_channels: int,
) -> tuple[np.ndarray, int, int]:
    """Mono float32 samples of shape ``(n,)``, the source rate and channel count."""
    with AvDecoder(
        source, container=container, max_rate=max_rate, max_channels=max_channels
    ) as decoder:
        chunks = list(decoder.blocks(max_duration_s=max_duration_s))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, decoder.rate, decoder.channels
