from __future__ import annotations

import librosa
import numpy as np
import pytest

from service.audio import decode_audio
from service.features import (
    FEATURE_SETS,
    FeatureError,
    SpeechStats,
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


SPEECH_STATS = ["speech-stats-v1", "speech-stats-v2"]


@pytest.mark.parametrize("name", SPEECH_STATS)
@pytest.mark.parametrize("f0", [110.0, 220.0, 330.0])
def test_speech_stats_pitch_tracks_the_fundamental(f0: float, name: str) -> None:
    fs = get_feature_set(name)
    names = fs.names()
    vector = fs.extract(tone(freq=f0, seconds=1.0, noise=0.001))
    median_octaves = vector[names.index("f0_p50")]
    assert median_octaves == pytest.approx(np.log2(f0 / 100.0), abs=0.02)
    assert vector[names.index("voiced_fraction")] > 0.9


@pytest.mark.parametrize("name", SPEECH_STATS)
def test_speech_stats_ignore_leading_and_trailing_silence(name: str) -> None:
    fs = get_feature_set(name)
    y = tone(freq=200.0, seconds=1.0)
    silence = np.zeros(8000, dtype=np.float32)
    padded = np.concatenate([silence, y, silence])
    names = fs.names()
    a, b = fs.extract(y), fs.extract(padded)
    for name in ("f0_p50", "mfcc1_mean", "centroid_mean", "voiced_fraction"):
        i = names.index(name)
        assert a[i] == pytest.approx(b[i], rel=0.05, abs=0.05), name


def _glide(seconds: float = 1.5, rate: int = 16_000) -> tuple[np.ndarray, np.ndarray]:
    """A voiced-like glide from 120 to 300 Hz (harmonics 1-4) and its F0 per sample."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120.0 * (300.0 / 120.0) ** (t / seconds)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(0.3 / k * np.sin(k * phase) for k in (1, 2, 3, 4))
    noise = 0.005 * np.random.default_rng(3).standard_normal(t.shape)
    return (y + noise).astype(np.float32), f0


def _band_limited_in_spectrum() -> SpeechStats:
    """speech-stats-v2 with its pitch band cut in the spectrum instead of by resampling."""
    import dataclasses

    v2 = get_feature_set("speech-stats-v2").config
    return SpeechStats(dataclasses.replace(v2, version=3, pitch_from_spectrum=True))


@pytest.mark.parametrize("band_limit", ["resample", "spectrum"])
def test_speech_stats_v2_pitch_agrees_with_librosa_yin(band_limit: str) -> None:
    """The 8 kHz tracker against a reference implementation on a moving F0, with the band
    limited by resampling the signal or by dropping FFT bins of full-rate frames.

    Stated tolerance: the median frame error is under 1% and 95% of frames are within 3%
    of ``librosa.yin`` (frames at the same centres, the same F0 range).
    """
    fs = (
        get_feature_set("speech-stats-v2")
        if band_limit == "resample"
        else _band_limited_in_spectrum()
    )
    cfg = fs.config
    y, _ = _glide()
    hop = cfg.pitch_hop
    n_frames = 1 + y.shape[0] // hop
    ours, strength = fs._pitch(y, np.arange(n_frames))
    reference = librosa.yin(
        y,
        fmin=cfg.f0_min,
        fmax=cfg.f0_max,
        sr=fs.sample_rate,
        frame_length=1024,
        hop_length=hop,
        center=True,
    )[:n_frames]
    inner = slice(3, n_frames - 3)  # edge frames are half padding
    error = np.abs(ours[inner] / reference[inner] - 1.0)
    assert np.median(error) < 0.01
    assert np.quantile(error, 0.95) < 0.03
    assert (strength[inner] > cfg.voicing_threshold).mean() > 0.95


def test_speech_stats_v2_is_a_cheaper_estimate_of_v1() -> None:
    """Same statistics by cheaper means: pitch, energy and MFCC features agree with v1."""
    v1, v2 = get_feature_set("speech-stats-v1"), get_feature_set("speech-stats-v2")
    y, _ = _glide()
    a, b = v1.extract(y), v2.extract(y)
    for name in ("f0_mean", "f0_p10", "f0_p50", "f0_p90", "f0_slope"):
        assert b[v2.names().index(name)] == pytest.approx(a[v1.names().index(name)], abs=0.03)
    shared = [n for n in v1.names() if n.startswith(("mfcc", "dmfcc", "energy", "zcr"))]
    np.testing.assert_allclose(
        [b[v2.names().index(n)] for n in shared], [a[v1.names().index(n)] for n in shared]
    )
    assert v2.dim == v1.dim + 4


def test_pitch_band_cut_in_the_spectrum_matches_resampling() -> None:
    """Dropping the FFT bins above 4 kHz is a brick-wall version of resampling to 8 kHz:
    every pitch statistic of a voiced glide agrees within 0.01 octave, and the rest of the
    vector is the same."""
    v2, spectral = get_feature_set("speech-stats-v2"), _band_limited_in_spectrum()
    y, _ = _glide()
    a, b = v2.extract(y), spectral.extract(y)
    pitch = [i for i, n in enumerate(v2.names()) if n.startswith(("f0", "df0"))]
    np.testing.assert_allclose(b[pitch], a[pitch], atol=0.01)
    rest = [i for i, n in enumerate(v2.names()) if n.startswith(("mfcc", "dmfcc", "energy"))]
    np.testing.assert_array_equal(b[rest], a[rest])
    assert "pitch_from_spectrum" not in v2.to_dict()
    assert spectral.to_dict()["pitch_from_spectrum"] is True


def test_version_one_keeps_its_recorded_config() -> None:
    """Fields added in version 2 stay out of version 1's contract: v1 models still load."""
    v1 = get_feature_set("speech-stats-v1").to_dict()
    v2 = get_feature_set("speech-stats-v2").to_dict()
    added = {"pitch_rate", "pitch_hop", "flatness_on", "voice_quality", "floor_margin_db"}
    assert added.isdisjoint(v1) and added <= set(v2)
    assert v2["pitch_rate"] == 8000 and v2["version"] == 2


@pytest.mark.parametrize(
    ("n", "win", "hop"),
    [(16_123, 400, 160), (48_000, 2048, 512), (7_777, 401, 160), (300, 400, 160), (999, 64, 48)],
)
def test_zero_crossing_rate_counts_like_a_frame_matrix(n: int, win: int, hop: int) -> None:
    from service.features import _zero_crossing_rate

    y = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y[n // 3 : n // 2] = 0.0  # a silent stretch: no sign changes there
    n_frames = 1 + y.shape[0] // hop
    padded = np.pad(y, win // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    signs = np.signbit(frames)
    expected = (signs[:, 1:] != signs[:, :-1]).mean(axis=1)
    ours = _zero_crossing_rate(y, frame_length=win, hop_length=hop, n_frames=n_frames)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_mean_and_std_helpers_match_numpy() -> None:
    from service.features import _column_mean_std, _mean_std

    rng = np.random.default_rng(5)
    for x in (rng.normal(3.0, 2.0, 101), np.array([7.5]), rng.random(40).astype(np.float32)):
        mean, std = _mean_std(x)
        assert mean == pytest.approx(float(np.mean(x, dtype=np.float64)), rel=1e-12)
        assert std == pytest.approx(float(np.std(x, dtype=np.float64)), rel=1e-12, abs=1e-15)
    matrix = rng.normal(-300.0, 50.0, (250, 70))  # MFCC 0-like: large mean, modest spread
    means, stds = _column_mean_std(matrix)
    np.testing.assert_allclose(means, matrix.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stds, matrix.std(axis=0), rtol=1e-10)


def test_percentiles_and_slope_match_numpy() -> None:
    from service.features import _percentiles, _slope

    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 300):
        x = rng.standard_normal(n)
        np.testing.assert_allclose(
            _percentiles(x, (10, 50, 90)), np.percentile(x, [10, 50, 90]), rtol=1e-12
        )
    t = np.arange(50) * 0.02
    v = 0.3 * t + 0.01 * rng.standard_normal(50)
    assert _slope(t, v) == pytest.approx(np.polyfit(t, v, 1)[0], rel=1e-9)
    assert _slope(np.ones(5), v[:5]) == 0.0


def test_feature_config_is_validated() -> None:
    from service.features import SpectralConfig, SpeechStats, SpeechStatsConfig

    base = {"name": "x", "version": 2, "spectral": SpectralConfig(hop_length=160)}
    with pytest.raises(FeatureError, match="flatness_on"):
        SpeechStats(SpeechStatsConfig(**base, flatness_on="bark"))
    with pytest.raises(FeatureError, match="pitch_hop"):
        SpeechStats(SpeechStatsConfig(**base, pitch_hop=250))
    with pytest.raises(FeatureError, match="pitch_rate"):
        SpeechStats(SpeechStatsConfig(**base, pitch_rate=7000))


def test_noise_floor_gate_keeps_noise_only_frames_out() -> None:
    """In steady noise, v2's floor test pools speech frames, not the noise between them."""
    import dataclasses

    from service.features import SpeechStats
    from trainer.augment import apply

    gated = get_feature_set("speech-stats-v2")
    ungated = SpeechStats(dataclasses.replace(gated.config, floor_margin_db=None))
    silence = np.zeros(16_000, dtype=np.float32)
    y = np.concatenate(
        [silence, tone(freq=180.0, noise=0.0), silence, tone(freq=240.0, noise=0.0), silence]
    )
    noisy = apply(y, "white@10", sample_rate=16_000, seed=1)
    names = gated.names()
    for name in ("centroid_mean", "zcr_mean", "voiced_fraction", "energy_mean"):
        i = names.index(name)
        drift_gated = abs(gated.extract(noisy)[i] - gated.extract(y)[i])
        drift_ungated = abs(ungated.extract(noisy)[i] - ungated.extract(y)[i])
        assert drift_gated < 0.3 * drift_ungated, name
    # On clean audio the floor is far below the loudest-frame test: nothing changes.
    np.testing.assert_array_equal(gated.extract(y), ungated.extract(y))


def test_floor_gate_can_be_limited_to_noisy_clips() -> None:
    """With ``floor_gate_below_db``, a clip far above its floor is pooled as without the
    floor test, and a noisy one as with it."""
    import dataclasses

    from trainer.augment import apply

    gated = get_feature_set("speech-stats-v2")
    config = dataclasses.replace(gated.config, version=3)
    ungated = SpeechStats(dataclasses.replace(config, floor_margin_db=None))
    selective = SpeechStats(dataclasses.replace(config, floor_gate_below_db=30.0))
    silence = np.zeros(16_000, dtype=np.float32)
    # A note fading out over 40 dB: its tail frames sit between the two thresholds.
    note = tone(freq=180.0, noise=0.0) * np.geomspace(1.0, 0.01, 16_000).astype(np.float32)
    speech = np.concatenate([silence, note, silence])
    # 25 dB SNR leaves the loudest frame ~39 dB above the floor: the always-on floor test
    # drops the faint tail, the selective one (30 dB) does not; at 10 dB both apply it.
    for snr, like in ((25, ungated), (10, gated)):
        y = apply(speech, f"white@{snr}", sample_rate=16_000, seed=1)
        assert not np.array_equal(gated.extract(y), ungated.extract(y))
        np.testing.assert_array_equal(selective.extract(y), like.extract(y))


def test_rolloff_bins_match_a_running_sum() -> None:
    from service.features import _block_sums, _rolloff_bins

    rng = np.random.default_rng(2)
    for n_bins in (257, 1025, 16, 17, 5):
        # Peaky spectra (high powers of uniform noise), a flat one and silent frames.
        power = rng.random((60, n_bins)).astype(np.float32) ** rng.uniform(1, 12, (60, 1))
        power[::9] = 0.0
        power[1] = 1.0
        for fraction in (0.85, 0.5, 0.99):
            running = np.cumsum(power, axis=1)
            expected = np.argmax(running >= fraction * running[:, -1:], axis=1)
            np.testing.assert_array_equal(_rolloff_bins(power, fraction=fraction), expected)
            # Block sums the caller already has give the same bins.
            block_sums = _block_sums(power)
            np.testing.assert_allclose(block_sums[:, -1], power.sum(axis=1), rtol=1e-5)
            given = _rolloff_bins(power, fraction=fraction, block_sums=block_sums)
            np.testing.assert_array_equal(given, expected)


def test_framing_padding_and_deltas_equal_their_numpy_definitions() -> None:
    from service.features import _delta, _frames, _zero_padded

    rng = np.random.default_rng(3)
    y = rng.standard_normal(1234).astype(np.float32)
    for length, hop in ((512, 160), (400, 160), (320, 160), (1234, 7)):
        expected = np.lib.stride_tricks.sliding_window_view(y, length)[::hop]
        np.testing.assert_array_equal(_frames(y, length=length, hop=hop), expected)
    np.testing.assert_array_equal(_zero_padded(y, 256), np.pad(y, 256))
    frames = rng.standard_normal((40, 3)).astype(np.float32)
    padded = np.pad(frames, ((2, 2), (0, 0)), mode="edge")
    expected = sum(k * (padded[2 + k : 42 + k] - padded[2 - k : 42 - k]) for k in (1, 2)) / 10
    np.testing.assert_allclose(_delta(frames, width=5), expected, rtol=1e-6, atol=1e-6)
    # Width 7 runs the k > 2 terms too; width 1 has no neighbours and so no movement.
    padded = np.pad(frames, ((3, 3), (0, 0)), mode="edge")
    expected = sum(k * (padded[3 + k : 43 + k] - padded[3 - k : 43 - k]) for k in (1, 2, 3)) / 28
    np.testing.assert_allclose(_delta(frames, width=7), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(_delta(frames, width=1), np.zeros_like(frames))


@pytest.mark.parametrize("name", sorted(FEATURE_SETS))
def test_sparse_mel_product_equals_the_dense_one(name: str) -> None:
    """The mel filters are applied as a sparse matrix; the values are the dense product's
    within float32 round-off, silent frames (all zeros) included."""
    frontend = get_feature_set(name).frontend
    rng = np.random.default_rng(4)
    power = rng.random((37, frontend.mel_dct[0].shape[0])).astype(np.float32) ** 4
    power[5] = 0.0
    dense = power @ frontend.mel_dct[0]
    sparse = frontend.mel_power(power)
    assert sparse.shape == dense.shape and sparse.dtype == np.float32
    np.testing.assert_allclose(sparse, dense, rtol=2e-6, atol=1e-12)
    assert not sparse[5].any()


@pytest.mark.parametrize("name", sorted(FEATURE_SETS))
def test_clips_shorter_than_the_smoothing_window_still_give_features(name: str) -> None:
    """Fewer than five frames (under 40 ms): once a broadcasting error, now a vector."""
    fs = get_feature_set(name)
    for n in (1, 160, 400, 639):
        y = np.random.default_rng(n).normal(0.0, 0.1, n).astype(np.float32)
        vector = fs.extract(y)
        assert vector.shape == (fs.dim,) and np.isfinite(vector).all()
