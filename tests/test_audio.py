from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
import soundfile as sf

from service.audio import (
    CANONICAL_RATE,
    AudioError,
    AudioTooLongError,
    UnsupportedFormatError,
    decode_audio,
)
from tests.helpers import encode, tone

FORMATS = [
    ("WAV", "PCM_16"),
    ("WAV", "PCM_24"),
    ("WAV", "FLOAT"),
    ("FLAC", "PCM_16"),
    ("OGG", "VORBIS"),
    ("OGG", "OPUS"),
    ("MP3", "MPEG_LAYER_III"),
    ("AIFF", "PCM_16"),
]


@pytest.mark.parametrize(("fmt", "subtype"), FORMATS)
def test_each_format_decodes_to_canonical_mono(fmt: str, subtype: str) -> None:
    rate = 48_000 if subtype == "OPUS" else 44_100
    original = tone(freq=300.0, seconds=1.0, rate=rate)
    audio = decode_audio(encode(original, rate=rate, format=fmt, subtype=subtype))
    assert audio.sample_rate == CANONICAL_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    # Lossy codecs add or trim a few ms of padding.
    assert audio.duration_s == pytest.approx(1.0, abs=0.08)
    assert 0.1 < np.abs(audio.samples).max() < 1.0


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 44_100, 48_000, 96_000])
def test_any_rate_is_resampled_and_keeps_the_pitch(rate: int) -> None:
    audio = decode_audio(encode(tone(freq=440.0, seconds=1.0, rate=rate, noise=0.0), rate=rate))
    assert audio.source_rate == rate
    assert audio.samples.shape[0] == pytest.approx(CANONICAL_RATE, abs=2)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    peak_hz = np.argmax(spectrum) * CANONICAL_RATE / audio.samples.shape[0]
    assert peak_hz == pytest.approx(440.0, abs=2.0)


def test_stereo_is_mixed_to_mono() -> None:
    left = tone(freq=300.0, seconds=0.5, noise=0.0)
    stereo = np.stack([left, -left], axis=1)  # cancels out when mixed
    audio = decode_audio(encode(stereo))
    assert audio.source_channels == 2
    assert np.abs(audio.samples).max() < 1e-3


def test_int16_and_float_give_the_same_signal() -> None:
    y = tone(seconds=0.5)
    as_int = decode_audio(encode(y, subtype="PCM_16")).samples
    as_float = decode_audio(encode(y, subtype="FLOAT")).samples
    np.testing.assert_allclose(as_int, as_float, atol=1e-4)


def test_path_and_bytes_decode_identically(tmp_path) -> None:
    data = encode(tone(seconds=0.5), rate=22_050, format="FLAC")
    path = tmp_path / "clip.flac"
    path.write_bytes(data)
    np.testing.assert_array_equal(decode_audio(path).samples, decode_audio(data).samples)


def _wav_header(*, channels: int, rate: int, frames: int, bits: int = 16) -> bytes:
    block = channels * bits // 8
    data_len = frames * block
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", data_len)
    )


def _float_wav(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, values, 16_000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


INVALID = {
    "not_audio": (b"this is plainly a text file, not audio" * 10, UnsupportedFormatError),
    "empty_upload": (b"", AudioError),
    "zero_frames": (_wav_header(channels=1, rate=16_000, frames=0), AudioError),
    "truncated_header": (encode(tone(seconds=0.5))[:30], AudioError),
    "all_nan": (_float_wav(np.full(16_000, np.nan, dtype=np.float32)), AudioError),
    "some_inf": (
        _float_wav(np.where(np.arange(16_000) == 5, np.inf, 0.1).astype(np.float32)),
        AudioError,
    ),
    "absurd_rate": (_wav_header(channels=1, rate=2_000_000, frames=100) + b"\0" * 200, AudioError),
    "tiny_rate": (_wav_header(channels=1, rate=10, frames=100) + b"\0" * 200, AudioError),
    "absurd_channels": (
        _wav_header(channels=200, rate=16_000, frames=10) + b"\0" * 4000,
        AudioError,
    ),
    "one_sample": (encode(np.zeros(1, dtype=np.float32)), AudioError),
    "huge_floats": (_float_wav(np.full(16_000, 1e30, dtype=np.float32)), AudioError),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_audio_raises_the_typed_error(case: str) -> None:
    data, error = INVALID[case]
    with pytest.raises(error) as info:
        decode_audio(data)
    assert str(info.value)  # a human message
    assert info.value.reason


def test_truncated_body_decodes_what_is_there_or_fails_cleanly() -> None:
    data = encode(tone(seconds=1.0))
    cut = data[: len(data) // 2]
    try:
        audio = decode_audio(cut)
    except AudioError:
        return
    assert audio.duration_s < 0.6


def test_header_claiming_a_huge_length_is_not_trusted() -> None:
    # Claims ~18 hours of audio, carries 0.1 s: only what is there is read.
    data = _wav_header(channels=1, rate=16_000, frames=2**31 // 2 - 100) + b"\1" * 3200
    audio = decode_audio(data, max_duration_s=60.0)
    assert audio.duration_s == pytest.approx(0.1, abs=0.001)


def test_duration_limit_names_the_limit() -> None:
    with pytest.raises(AudioTooLongError, match="60 s"):
        decode_audio(encode(tone(seconds=61.0, rate=8_000), rate=8_000), max_duration_s=60.0)
    assert decode_audio(encode(tone(seconds=59.0, rate=8_000), rate=8_000), max_duration_s=60.0)


def test_8_channels_at_192khz_decode() -> None:
    y = tone(seconds=0.2, rate=192_000, channels=8)
    audio = decode_audio(encode(y, rate=192_000))
    assert audio.source_channels == 8 and audio.sample_rate == CANONICAL_RATE


def test_wave_module_output_is_accepted() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(11_025)
        handle.writeframes((tone(seconds=0.5, rate=11_025) * 32767).astype("<i2").tobytes())
    assert decode_audio(buffer.getvalue()).duration_s == pytest.approx(0.5, abs=0.01)


def _decode_outcome(data: bytes, **kwargs: object) -> tuple[str, object]:
    try:
        audio = decode_audio(data, **kwargs)  # type: ignore[arg-type]
    except AudioError as exc:
        return type(exc).__name__, exc.reason
    return "ok", (audio.samples, audio.source_rate, audio.source_channels, audio.source_format)


def _pcm16_cases() -> dict[str, tuple[bytes, dict[str, object]]]:
    rng = np.random.default_rng(11)
    noise = rng.integers(-32768, 32768, 40_000, dtype=np.int16)
    stereo = tone(seconds=0.7, rate=44_100, channels=2)
    full = encode(tone(seconds=1.0), subtype="PCM_16")
    return {
        "mono 16 kHz": (full, {}),
        "stereo 44.1 kHz": (encode(stereo, rate=44_100, subtype="PCM_16"), {}),
        "full-scale noise": (
            _wav_header(channels=1, rate=8_000, frames=40_000) + noise.tobytes(),
            {},
        ),
        "8 channels": (encode(tone(seconds=0.2, rate=48_000, channels=8), rate=48_000), {}),
        "truncated data": (full[: len(full) // 2], {}),
        "data chunk claims 18 h": (
            _wav_header(channels=1, rate=16_000, frames=2**31 // 2 - 100) + b"\1" * 3200,
            {"max_duration_s": 60.0},
        ),
        "over the limit": (full, {"max_duration_s": 0.5}),
        "limit exactly met": (full, {"max_duration_s": 1.0}),
        "too short": (encode(tone(seconds=0.05), subtype="PCM_16"), {}),
        "zero frames": (_wav_header(channels=1, rate=16_000, frames=0), {}),
        "absurd rate": (_wav_header(channels=1, rate=2_000_000, frames=100) + b"\0" * 200, {}),
        "absurd channels": (_wav_header(channels=200, rate=16_000, frames=10) + b"\0" * 4000, {}),
        "8-bit": (_wav_header(channels=1, rate=16_000, frames=4000, bits=8) + b"\x80" * 4000, {}),
        "24-bit": (encode(tone(seconds=0.5), subtype="PCM_24"), {}),
    }


@pytest.mark.parametrize("case", sorted(_pcm16_cases()))
def test_the_pcm16_wav_fast_path_decodes_exactly_as_libsndfile(case: str, monkeypatch) -> None:
    """In-memory 16-bit WAVs skip libsndfile; every outcome (samples, header fields, or the
    error type and reason) must be what libsndfile alone gives."""
    import service.audio.decode

    data, kwargs = _pcm16_cases()[case]
    fast = _decode_outcome(data, **kwargs)
    monkeypatch.setattr(service.audio.decode, "_read_pcm16_wav", lambda *_: None)
    reference = _decode_outcome(data, **kwargs)
    assert fast[0] == reference[0], (fast, reference)
    if fast[0] == "ok":
        samples, *header = fast[1]  # type: ignore[misc]
        ref_samples, *ref_header = reference[1]  # type: ignore[misc]
        np.testing.assert_array_equal(samples, ref_samples)
        assert header == ref_header
    else:
        assert fast[1] == reference[1]


def test_the_pcm16_wav_fast_path_is_taken_for_plain_wavs() -> None:
    from service.audio.decode import _read_pcm16_wav

    assert _read_pcm16_wav(encode(tone(seconds=0.3), subtype="PCM_16"), None) is not None
    assert _read_pcm16_wav(encode(tone(seconds=0.3), subtype="PCM_24"), None) is None
    assert _read_pcm16_wav(encode(tone(seconds=0.3), format="FLAC"), None) is None
