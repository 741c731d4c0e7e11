"""Why audio is refused: each error carries a short machine-readable ``reason``."""

from __future__ import annotations


class AudioError(ValueError):
    """The input is not usable audio. ``reason`` is a short machine-readable code."""

    def __init__(self, message: str, *, reason: str = "invalid_audio") -> None:
        super().__init__(message)
        self.reason = reason


class AudioTooLongError(AudioError):
    """The audio is longer than the configured limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="audio_too_long")


class UnsupportedFormatError(AudioError):
    """The bytes are in a container or codec the decoder cannot read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="unsupported_format")


def too_long(max_duration_s: float | None) -> AudioTooLongError:
    """The error for audio found, while reading, to run past ``max_duration_s``."""
    return AudioTooLongError(f"Audio is longer than the limit of {max_duration_s:g} s.")


def corrupt(exc: BaseException) -> AudioError:
    """The error for data that broke the decoder part-way (``exc``)."""
    return AudioError(f"The audio data is corrupt or truncated: {exc}.", reason="corrupt")
