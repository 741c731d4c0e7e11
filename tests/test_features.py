from __future__ import annotations

import librosa
import numpy as np
import pytest

from service.audio import decode_audio
from service.features import FEATURE_SETS, FeatureError, extract_features, get_feature_set
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
    for y in (tone(freq=180.0, seconds=2.3), (0.05 * rng.standard_normal(37_123)).astype(np.float32)):
        reference = librosa.feature.mfcc(y=y, sr=16_000, n_mfcc=40)
        ours = fs.mfcc(y).T
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours, reference, atol=MFCC_ATOL, rtol=MFCC_RTOL)
        np.testing.assert_allclose(fs.extract(y), reference.mean(axis=1), atol=MFCC_ATOL)


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
