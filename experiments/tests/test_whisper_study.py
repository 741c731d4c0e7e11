"""The Whisper study's weight reader parses CTranslate2's format as written, and its numpy
front end is Whisper's (Slaney filters, centred framing, clamp to max - 8)."""

from __future__ import annotations

import struct
from pathlib import Path

import librosa
import numpy as np

from experiments.whisper.ct2_weights import read_model_bin
from experiments.whisper.frontend import HOP, log_mel, mel_filters, power_spectrogram


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def _write_model_bin(path: Path, variables: dict[str, tuple[int, np.ndarray]]) -> None:
    """A model.bin as ctranslate2's ModelSpec._serialize writes it (binary version 6)."""
    blob = struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<I", 3)
    blob += struct.pack("<I", len(variables))
    for name, (type_id, value) in variables.items():
        raw = value.tobytes()
        blob += _string(name) + struct.pack("<B", value.ndim)
        blob += b"".join(struct.pack("<I", d) for d in value.shape)
        blob += struct.pack("<BI", type_id, len(raw)) + raw
    blob += struct.pack("<I", 1) + _string("decoder/projection/weight")
    blob += _string("decoder/embeddings/weight")
    path.write_bytes(blob)


def test_the_reader_returns_every_variable_with_its_dtype_shape_and_the_aliases(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    half = rng.standard_normal((3, 80, 3)).astype(np.float16)
    single = rng.standard_normal(5).astype(np.float32)
    heads = np.array(6, dtype=np.int16)
    wide = np.array([1.5, -2.25], dtype=np.float32)
    bf16 = (wide.view(np.uint32) >> 16).astype(np.uint16)  # exact in bfloat16
    path = tmp_path / "model.bin"
    _write_model_bin(
        path,
        {
            "encoder/conv1/weight": (4, half),
            "encoder/conv1/bias": (0, single),
            "encoder/num_heads": (2, heads),
            "encoder/scale": (5, bf16),
        },
    )
    header, variables = read_model_bin(path)
    assert header["spec_name"] == "WhisperSpec" and header["spec_revision"] == 3
    assert header["aliases"] == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert variables["encoder/conv1/weight"].dtype == np.float16
    np.testing.assert_array_equal(variables["encoder/conv1/weight"], half)
    np.testing.assert_array_equal(variables["encoder/conv1/bias"], single)
    assert int(variables["encoder/num_heads"]) == 6
    np.testing.assert_array_equal(variables["encoder/scale"], wide)


def test_a_truncated_file_is_refused_rather_than_misread(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    _write_model_bin(path, {"x": (0, np.ones(4, dtype=np.float32))})
    path.write_bytes(path.read_bytes() + b"\0\0")
    try:
        read_model_bin(path)
    except ValueError as exc:
        assert "unread bytes" in str(exc)
    else:
        raise AssertionError("trailing bytes were accepted")


def test_the_filters_are_librosa_slaney_mel_filters() -> None:
    expected = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False, norm="slaney")
    np.testing.assert_allclose(mel_filters(), expected, atol=1e-7)


def test_the_power_spectrogram_is_a_centred_periodic_hann_stft_without_its_last_frame() -> None:
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    stft = librosa.stft(audio, n_fft=400, hop_length=HOP, window="hann", pad_mode="reflect")
    expected = np.abs(stft[:, :-1]) ** 2
    got = power_spectrogram(audio)
    assert got.shape == (201, 16000 // HOP)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)


def test_log_mel_is_clamped_to_eight_decades_below_its_peak_and_rescaled() -> None:
    t = np.arange(24000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio[:8000] = 0.0  # silence floors at the clamp
    mel = log_mel(audio)
    assert mel.shape == (80, 24000 // HOP)
    # (log10 + 4) / 4: eight decades below the peak is 2 units below it.
    assert np.isclose(mel.min(), mel.max() - 2.0, atol=1e-5)
    padded = log_mel(audio, pad_to=30 * 16000)
    assert padded.shape == (80, 3000)
