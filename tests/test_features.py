from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest

from service.audio import decode_audio
from service.features import (
    FEATURE_SETS,
    RETIRED_FEATURE_SETS,
    FeatureError,
    SpectralConfig,
    SpeechStats,
    SpeechStatsConfig,
    extract_features,
    get_feature_set,
    mel_filterbank,
)
from service.features.frontend import frame_view, zero_padded
from service.features.tracks import (
    column_mean_std,
    cumulative_block_power,
    delta,
    energy_db,
    mean_std,
    percentiles,
    rolloff_bins,
    slope,
    spectral_shape,
    zero_crossing_rate,
)
from tests.helpers import encode, tone
from trainer.extract import features_for_file

# Stated tolerance against librosa.feature.mfcc: float32 FFT round-off on values up to ~600.
MFCC_ATOL = 5e-3
MFCC_RTOL = 1e-4

#: What the bundled models and the recipes run; written out, so that a set added to or dropped
#: from the registry is a decision a test sees, not a parameter list that follows it.
SHIPPED_FEATURE_SETS = (
    "mfcc40-mean",
    "speech-stats-v2",
    "speech-stats-v2+ge2e-int8",
    "speech-stats-v2+whisper-l23-int8",
)


def test_the_registry_holds_the_shipped_sets_only_and_is_read_only() -> None:
    assert sorted(FEATURE_SETS) == sorted(SHIPPED_FEATURE_SETS)
    with pytest.raises(TypeError):
        FEATURE_SETS["variant"] = FEATURE_SETS["speech-stats-v2"]  # type: ignore[index]
    for retired in ("speech-stats-v1", "speech-stats-v2+ge2e"):
        assert retired in RETIRED_FEATURE_SETS and retired not in FEATURE_SETS
        with pytest.raises(FeatureError, match=r"retired in service 0\.2\.0"):
            get_feature_set(retired)


@pytest.mark.parametrize("name", SHIPPED_FEATURE_SETS)
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
        "import sys, numpy as np; from service.features import get_feature_set\n"
        "[get_feature_set(name).extract(np.random.default_rng(0).standard_normal(16000)"
        f".astype('float32')) for name in {SHIPPED_FEATURE_SETS!r}]\n"
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
    trained = features_for_file(path, fs)
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
    fs = get_feature_set("speech-stats-v2")
    names = fs.names()
    vector = fs.extract(tone(freq=f0, seconds=1.0, noise=0.001))
    median_octaves = vector[names.index("f0_p50")]
    assert median_octaves == pytest.approx(np.log2(f0 / 100.0), abs=0.02)
    assert vector[names.index("voiced_fraction")] > 0.9


def test_speech_stats_ignore_leading_and_trailing_silence() -> None:
    fs = get_feature_set("speech-stats-v2")
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


def test_speech_stats_v2_pitch_agrees_with_librosa_yin() -> None:
    """The 8 kHz tracker against a reference implementation on a moving F0.

    Stated tolerance: the median frame error is under 1% and 95% of frames are within 3%
    of ``librosa.yin`` (frames at the same centres, the same F0 range).
    """
    fs = get_feature_set("speech-stats-v2")
    assert isinstance(fs, SpeechStats)
    cfg = fs.config
    y, _ = _glide()
    hop = cfg.pitch_hop
    n_frames = 1 + y.shape[0] // hop
    ours, strength = fs.pitch.track(y, np.arange(n_frames))
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


def _spoken(rate: int = 16_000) -> np.ndarray:
    """Two voiced glides with pauses in a faint noise floor: speech and silence frames."""
    y, _ = _glide()
    pause = 0.002 * np.random.default_rng(11).standard_normal(rate // 2).astype(np.float32)
    return np.concatenate([pause, y, pause, 0.3 * y[::-1], pause]).astype(np.float32)


class TestServedFrontEndAgainstLibrosa:
    """The per-frame tracks of ``speech-stats-v2`` (n_fft 512, window 400, hop 160, 64 mels,
    50-8000 Hz), computed as the statistics compute them, against librosa on the same clip.

    The feature code weights the spectral shape by power (librosa's ``y=`` path weights by
    magnitude) and measures flatness over mel power (librosa over the STFT), so librosa is
    given those spectrograms as ``S``. Stated tolerances: centroid and bandwidth within
    1e-4 relative, flatness within 1e-3 relative (float32 logarithms of the mel bands),
    frame energy within 1e-3 dB.
    """

    @pytest.fixture(scope="class")
    def clip(self) -> np.ndarray:
        return _spoken()

    @pytest.fixture(scope="class")
    def ours(self, clip: np.ndarray) -> dict[str, np.ndarray]:
        fs = get_feature_set("speech-stats-v2")
        assert isinstance(fs, SpeechStats)
        power = fs.frontend.power(clip)
        total = cumulative_block_power(power)[:, -1]
        centroid, bandwidth, flatness = spectral_shape(
            power, total, fs.frontend.mel_power(power), fs.freqs_khz
        )
        energy = energy_db(total, amin=fs.config.spectral.db_amin)
        return {
            "centroid": centroid,
            "bandwidth": bandwidth,
            "flatness": flatness,
            "energy": energy,
        }

    @pytest.fixture(scope="class")
    def magnitude(self, clip: np.ndarray) -> np.ndarray:
        spec = get_feature_set("speech-stats-v2").config.spectral  # type: ignore[union-attr]
        assert (spec.n_fft, spec.win_length, spec.hop_length) == (512, 400, 160)
        assert (spec.n_mels, spec.fmin, spec.fmax) == (64, 50.0, 8000.0)
        stft = librosa.stft(
            clip, n_fft=512, hop_length=160, win_length=400, window="hann", pad_mode="constant"
        )
        return np.abs(stft)

    def test_centroid_and_bandwidth(self, ours, magnitude) -> None:
        power = magnitude**2
        centroid = librosa.feature.spectral_centroid(S=power, sr=16_000, n_fft=512)[0] / 1000
        bandwidth = librosa.feature.spectral_bandwidth(S=power, sr=16_000, n_fft=512)[0] / 1000
        assert ours["centroid"].shape == centroid.shape
        np.testing.assert_allclose(ours["centroid"], centroid, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(ours["bandwidth"], bandwidth, rtol=1e-4, atol=1e-6)

    def test_flatness_over_the_mel_bands(self, ours, magnitude) -> None:
        mel = librosa.feature.melspectrogram(
            S=magnitude**2, sr=16_000, n_fft=512, n_mels=64, fmin=50.0, fmax=8000.0
        )
        flatness = librosa.feature.spectral_flatness(S=mel, power=1.0)[0]
        np.testing.assert_allclose(ours["flatness"], flatness, rtol=1e-3)
        assert flatness.min() > 0 and flatness.max() <= 1

    def test_energy_is_the_frame_rms_in_db(self, ours, magnitude) -> None:
        rms = librosa.feature.rms(S=magnitude, frame_length=512)[0]
        # librosa's Parseval for a real frame counts the DC and Nyquist bins once; the feature
        # code's frame power is the plain one-sided sum, so they are added back.
        edges = magnitude[0] ** 2 + magnitude[-1] ** 2
        total = (512**2 * rms.astype(np.float64) ** 2 + edges) / 2
        np.testing.assert_allclose(ours["energy"], 10 * np.log10(total), atol=1e-3)
        # Speech and pauses both present: the range the speech gate works over.
        assert ours["energy"].max() - ours["energy"].min() > 30

    def test_the_statistics_pool_these_tracks_over_speech_frames(self, clip, ours) -> None:
        fs = get_feature_set("speech-stats-v2")
        assert isinstance(fs, SpeechStats)
        speech = fs.speech_frames(ours["energy"])
        assert 0.3 < speech.mean() < 0.9  # the pauses are left out
        vector, names = fs.extract(clip), fs.names()
        for track in ("centroid", "bandwidth", "flatness"):
            values = ours[track][speech].astype(np.float64)
            assert vector[names.index(f"{track}_mean")] == pytest.approx(values.mean(), rel=1e-6)
            assert vector[names.index(f"{track}_std")] == pytest.approx(values.std(), rel=1e-5)


def test_speech_stats_config_refuses_the_retired_options() -> None:
    """speech-stats-v1's options (flatness over the power bins, no voice quality, no floor
    test) left with it: a config asking for them is refused, not computed another way."""
    base = {"name": "x", "version": 2, "spectral": SpectralConfig(hop_length=160)}
    assert SpeechStats(SpeechStatsConfig(**base)).dim == 118  # the defaults are supported
    with pytest.raises(FeatureError, match="flatness_on"):
        SpeechStats(SpeechStatsConfig(**base, flatness_on="power"))
    with pytest.raises(FeatureError, match="voice_quality"):
        SpeechStats(SpeechStatsConfig(**base, voice_quality=False))
    with pytest.raises(FeatureError, match="floor_margin_db"):
        SpeechStats(SpeechStatsConfig(**base, floor_margin_db=None))  # type: ignore[arg-type]
    with pytest.raises(FeatureError, match="pitch_hop"):
        SpeechStats(SpeechStatsConfig(**base, pitch_hop=250))
    with pytest.raises(FeatureError, match="pitch_rate"):
        SpeechStats(SpeechStatsConfig(**base, pitch_rate=7000))
    # Version 3's fields are gone from the configuration altogether.
    with pytest.raises(TypeError):
        SpeechStatsConfig(**base, pitch_from_spectrum=True)  # type: ignore[call-arg]


def test_speech_stats_v2_records_the_contract_its_models_carry() -> None:
    """The configuration is in the bundled models' metadata: its keys and values are pinned,
    so a refactoring that adds, drops or renames a field cannot pass unnoticed."""
    config = get_feature_set("speech-stats-v2").to_dict()
    assert config == {
        "kind": "speech-stats",
        "name": "speech-stats-v2",
        "version": 2,
        "spectral": dataclasses.asdict(
            SpectralConfig(
                n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=50.0, fmax=8000.0
            )
        ),
        "n_mfcc": 30,
        "delta_width": 5,
        "silence_db": 40.0,
        "f0_min": 60.0,
        "f0_max": 500.0,
        "f0_frame_length": 640,
        "voicing_threshold": 0.45,
        "rolloff": 0.85,
        "pitch_rate": 8000,
        "pitch_hop": 320,
        "flatness_on": "mel",
        "voice_quality": True,
        "floor_margin_db": 6.0,
    }


def test_noise_floor_gate_keeps_noise_only_frames_out() -> None:
    """In steady noise the loudest-frame test alone takes noise-only frames for speech; the
    floor test keeps them out, and on clean audio it changes nothing."""
    from trainer.augment import apply

    fs = get_feature_set("speech-stats-v2")
    assert isinstance(fs, SpeechStats)
    rate, hop = 16_000, fs.config.spectral.hop_length
    silence = np.zeros(rate, dtype=np.float32)
    y = np.concatenate(
        [silence, tone(freq=180.0, noise=0.0), silence, tone(freq=240.0, noise=0.0), silence]
    )
    # Frames whose centres lie well inside a tone, and well inside a pause (20 ms margins).
    centres = np.arange(1 + y.shape[0] // hop) * hop
    in_tone = ((centres % (2 * rate)) >= rate + 320) & ((centres % (2 * rate)) < 2 * rate - 320)
    in_pause = ((centres % (2 * rate)) >= 320) & ((centres % (2 * rate)) < rate - 320)

    def energy(samples: np.ndarray) -> np.ndarray:
        total = cumulative_block_power(fs.frontend.power(samples))[:, -1]
        return energy_db(total, amin=fs.config.spectral.db_amin)

    noisy = energy(apply(y, "white@10", sample_rate=rate, seed=1))
    loudest_only = noisy > noisy.max() - fs.config.silence_db
    gated = fs.speech_frames(noisy)
    assert loudest_only[in_pause].mean() > 0.9  # why the floor test exists
    assert gated[in_pause].mean() < 0.05
    assert gated[in_tone].mean() > 0.95
    # Clean: the floor (digital silence) is far below the loudest-frame threshold.
    clean = energy(y)
    np.testing.assert_array_equal(fs.speech_frames(clean), clean > clean.max() - 40.0)


@pytest.mark.parametrize(
    ("n", "win", "hop"),
    [(16_123, 400, 160), (48_000, 2048, 512), (7_777, 401, 160), (300, 400, 160), (999, 64, 48)],
)
def test_zero_crossing_rate_counts_like_a_frame_matrix(n: int, win: int, hop: int) -> None:
    y = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y[n // 3 : n // 2] = 0.0  # a silent stretch: no sign changes there
    n_frames = 1 + y.shape[0] // hop
    padded = np.pad(y, win // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_frames]
    signs = np.signbit(frames)
    expected = (signs[:, 1:] != signs[:, :-1]).mean(axis=1)
    ours = zero_crossing_rate(y, frame_length=win, hop_length=hop, n_frames=n_frames)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_mean_and_std_helpers_match_numpy() -> None:
    rng = np.random.default_rng(5)
    for x in (rng.normal(3.0, 2.0, 101), np.array([7.5]), rng.random(40).astype(np.float32)):
        mean, std = mean_std(x)
        assert mean == pytest.approx(float(np.mean(x, dtype=np.float64)), rel=1e-12)
        assert std == pytest.approx(float(np.std(x, dtype=np.float64)), rel=1e-12, abs=1e-15)
    matrix = rng.normal(-300.0, 50.0, (250, 70))  # MFCC 0-like: large mean, modest spread
    means, stds = column_mean_std(matrix)
    np.testing.assert_allclose(means, matrix.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stds, matrix.std(axis=0), rtol=1e-10)


def test_percentiles_and_slope_match_numpy() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 300):
        x = rng.standard_normal(n)
        np.testing.assert_allclose(
            percentiles(x, (10, 50, 90)), np.percentile(x, [10, 50, 90]), rtol=1e-12
        )
    t = np.arange(50) * 0.02
    v = 0.3 * t + 0.01 * rng.standard_normal(50)
    assert slope(t, v) == pytest.approx(np.polyfit(t, v, 1)[0], rel=1e-9)
    assert slope(np.ones(5), v[:5]) == 0.0


def test_rolloff_bins_match_a_running_sum() -> None:
    rng = np.random.default_rng(2)
    for n_bins in (257, 1025, 16, 17, 5):
        # Peaky spectra (high powers of uniform noise), a flat one and silent frames.
        power = rng.random((60, n_bins)).astype(np.float32) ** rng.uniform(1, 12, (60, 1))
        power[::9] = 0.0
        power[1] = 1.0
        for fraction in (0.85, 0.5, 0.99):
            running = np.cumsum(power, axis=1)
            expected = np.argmax(running >= fraction * running[:, -1:], axis=1)
            np.testing.assert_array_equal(rolloff_bins(power, fraction=fraction), expected)
            # Block sums the caller already has give the same bins.
            block_sums = cumulative_block_power(power)
            np.testing.assert_allclose(block_sums[:, -1], power.sum(axis=1), rtol=1e-5)
            given = rolloff_bins(power, fraction=fraction, block_sums=block_sums)
            np.testing.assert_array_equal(given, expected)


def test_framing_padding_and_deltas_equal_their_numpy_definitions() -> None:
    rng = np.random.default_rng(3)
    y = rng.standard_normal(1234).astype(np.float32)
    for length, hop in ((512, 160), (400, 160), (320, 160), (1234, 7)):
        expected = np.lib.stride_tricks.sliding_window_view(y, length)[::hop]
        np.testing.assert_array_equal(frame_view(y, length=length, hop=hop), expected)
    np.testing.assert_array_equal(zero_padded(y, 256), np.pad(y, 256))
    frames = rng.standard_normal((40, 3)).astype(np.float32)
    padded = np.pad(frames, ((2, 2), (0, 0)), mode="edge")
    expected = sum(k * (padded[2 + k : 42 + k] - padded[2 - k : 42 - k]) for k in (1, 2)) / 10
    np.testing.assert_allclose(delta(frames, width=5), expected, rtol=1e-6, atol=1e-6)
    # Width 7 runs the k > 2 terms too; width 1 has no neighbours and so no movement.
    padded = np.pad(frames, ((3, 3), (0, 0)), mode="edge")
    expected = sum(k * (padded[3 + k : 43 + k] - padded[3 - k : 43 - k]) for k in (1, 2, 3)) / 28
    np.testing.assert_allclose(delta(frames, width=7), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(delta(frames, width=1), np.zeros_like(frames))


@pytest.mark.parametrize("name", SHIPPED_FEATURE_SETS)
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


@pytest.mark.parametrize("name", SHIPPED_FEATURE_SETS)
def test_clips_shorter_than_the_smoothing_window_still_give_features(name: str) -> None:
    """Fewer than five frames (under 40 ms): once a broadcasting error, now a vector."""
    fs = get_feature_set(name)
    for n in (1, 160, 400, 639):
        y = np.random.default_rng(n).normal(0.0, 0.1, n).astype(np.float32)
        vector = fs.extract(y)
        assert vector.shape == (fs.dim,) and np.isfinite(vector).all()
