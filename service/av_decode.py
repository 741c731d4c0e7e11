"""WebM/Opus and M4A/AAC through PyAV (FFmpeg's decoders, shipped inside the wheel)."""

from __future__ import annotations

import io
import os

import numpy as np

from service.audio import AudioError, AudioTooLongError, Source


def decode_with_av(
    source: Source,
    *,
    container: str,
    max_duration_s: float | None,
    max_rate: int,
    max_channels: int,
) -> tuple[np.ndarray, int, int]:
    """Mono float32 samples of shape ``(n,)``, the source rate and channel count."""
    import av

    handle = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    try:
        with av.open(
            handle if not isinstance(handle, os.PathLike) else str(handle), mode="r"
        ) as media:
            streams = media.streams.audio
            if not streams:
                raise AudioError(f"The {container} file has no audio stream.", reason="no_audio")
            stream = streams[0]
            rate = int(stream.codec_context.sample_rate or 0)
            channels = int(stream.codec_context.channels or 0)
            if not 1_000 <= rate <= max_rate or not 1 <= channels <= max_channels:
                raise AudioError(
                    f"{container} audio at {rate} Hz with {channels} channels is out of range.",
                    reason="bad_header",
                )
            limit = None if max_duration_s is None else int(max_duration_s * rate) + 1
            # Decoding to mono float at the source rate; the caller resamples with soxr.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks: list[np.ndarray] = []
            total = 0
            for frame in media.decode(stream):
                for mono in resampler.resample(frame):
                    block = mono.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    chunks.append(block)
                    total += block.shape[0]
                if limit is not None and total >= limit:
                    raise AudioTooLongError(
                        f"Audio is longer than the limit of {max_duration_s:g} s."
                    )
            for mono in resampler.resample(None):
                chunks.append(mono.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    except AudioError:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise AudioError(
            f"The {container} data is corrupt or truncated: {exc}.", reason="corrupt"
        ) from exc
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return samples, rate, channels
