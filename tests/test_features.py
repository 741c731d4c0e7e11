from __future__ import annotations

import librosa
import numpy as np
import pytest

from service.audio import decode_audio
from service.features import (
    FEATURE_SETS,
    FeatureError,
    extract_features,
    get_feature_set,
    mel_filterbank,
)
from tests.helpers import encode, tone
from trainer.extract import features_for_file

# Stated tolerance against librosa.feature.mfcc: float32 FFT round-off on values up to ~600.
MFCC_ATOL = 5e-3
MFCC_RTOL = 1e-4


@pytest.mark.parametrize("name", sorted(FEATURE_SETS))
def test_shape_dtype_and_determinism(name: str) -> None:
    fs = get_feature_set(name)
    y = tone(seconds=1.5)
    first = fs.extract(y)
    assert first.shape == (fs.dim,) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, fs.extract(y.copy()))


def test_mfcc40_mean_matches_librosa() -> None:
    fs = get_feature_set("mfcc40-mean")
    rng = np.random.default_rng(1)
    for y in (
        tone(freq=180.0, seconds=2.3),
        (0.05 * rng.standard_normal(37_123)).astype(np.float32),
    ):
        reference = librosa.feature.mfcc(y=y, sr=16_000, n_mfcc=40)
        ours = fs.mfcc(y).T
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours, reference, atol=MFCC_ATOL, rtol=MFCC_RTOL)
        np.testing.assert_allclose(fs.extract(y), reference.mean(axis=1), atol=MFCC_ATOL)


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax", "htk"),
    [
        (16_000, 2048, 128, 0.0, None, False),
        (16_000, 512, 64, 50.0, 8000.0, False),
        (22_050, 1024, 40, 20.0, 7600.0, True),
    ],
)
def test_mel_filterbank_equals_librosa(sr, n_fft, n_mels, fmin, fmax, htk) -> None:
    ours = mel_filterbank(sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    reference = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-8)


def test_serving_features_do_not_import_librosa() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from service.features import FEATURE_SETS\n"
        "[fs.extract(np.random.default_rng(0).standard_normal(16000).astype('float32'))"
        " for fs in FEATURE_SETS.values()]\n"
        "assert 'librosa' not in sys.modules and 'numba' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_features_differ_between_different_sounds() -> None:
    low = extract_features(tone(freq=120.0), feature_set="mfcc40-mean")
    high = extract_features(tone(freq=900.0), feature_set="mfcc40-mean")
    assert np.abs(low - high).max() > 1.0


def test_trainer_and_service_paths_give_identical_features(tmp_path) -> None:
    path = tmp_path / "clip.flac"
    path.write_bytes(encode(tone(seconds=1.2, rate=44_100), rate=44_100, format="FLAC"))
    fs = get_feature_set("mfcc40-mean")
    served = fs.extract(decode_audio(path.read_bytes(), target_rate=fs.sample_rate).samples)
    trained = features_for_file(path, "mfcc40-mean")
    np.testing.assert_array_equal(served, trained)


def test_unknown_feature_set_and_bad_input_raise_feature_error() -> None:
    with pytest.raises(FeatureError, match="unknown feature set"):
        get_feature_set("nope")
    fs = get_feature_set("mfcc40-mean")
    with pytest.raises(FeatureError):
        fs.extract(np.zeros((10, 2), dtype=np.float32))
    with pytest.raises(FeatureError):
        fs.extract(np.array([np.nan] * 4000, dtype=np.float32))
    with pytest.raises(FeatureError):
        fs.extract(np.zeros(0, dtype=np.float32))


@pytest.mark.parametrize("f0", [110.0, 220.0, 330.0])
def test_speech_stats_pitch_tracks_the_fundamental(f0: float) -> None:
    fs = get_feature_set("speech-stats-v1")
    names = fs.names()
    vector = fs.extract(tone(freq=f0, seconds=1.0, noise=0.001))
    median_octaves = vector[names.index("f0_p50")]
    assert median_octaves == pytest.approx(np.log2(f0 / 100.0), abs=0.02)
    assert vector[names.index("voiced_fraction")] > 0.9


def test_speech_stats_ignore_leading_and_trailing_silence() -> None:
    fs = get_feature_set("speech-stats-v1")
    y = tone(freq=200.0, seconds=1.0)
    silence = np.zeros(8000, dtype=np.float32)
    padded = np.concatenate([silence, y, silence])
    names = fs.names()
    a, b = fs.extract(y), fs.extract(padded)
    for name in ("f0_p50", "mfcc1_mean", "centroid_mean", "voiced_fraction"):
        i = names.index(name)
        assert a[i] == pytest.approx(b[i], rel=0.05, abs=0.05), name
