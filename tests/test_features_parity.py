"""The fast spectral front end against librosa, stage by stage (correctness only, no timing)."""

from __future__ import annotations

import subprocess
import sys

import librosa
import numpy as np
import pytest
import scipy.signal

from service.features import get_feature_set, periodic_window
from tests.helpers import tone

# Power spectra are compared relative to the largest bin: float32 FFT round-off (scipy's
# pocketfft in float32 vs librosa's float32 STFT) is ~1e-6 of the peak.
POWER_REL_TOL = 1e-5
# MFCC values reach a few hundred; float32 round-off through log10 and the DCT.
MFCC_ATOL = 5e-3


def _signals() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        tone(freq=440.0, seconds=1.0),
        # Odd lengths exercise the last partial frame and centre padding.
        (0.3 * rng.standard_normal(16_000 * 3 + 17)).astype(np.float32),
        # Quiet speech-like noise: log-mel floor and top_db clipping matter here.
        (1e-4 * rng.standard_normal(12_345)).astype(np.float32),
    ]


@pytest.mark.parametrize("index", range(3))
def test_power_spectrogram_matches_librosa_stft(index: int) -> None:
    y = _signals()[index]
    frontend = get_feature_set("mfcc40-mean").frontend
    spec = frontend.spectral
    reference = (
        np.abs(
            librosa.stft(
                y,
                n_fft=spec.n_fft,
                hop_length=spec.hop_length,
                win_length=spec.win_length,
                window=spec.window,
                center=spec.center,
                pad_mode=spec.pad_mode,
            )
        )
        ** 2
    ).T
    ours = frontend.power(y)
    assert ours.dtype == np.float32 and ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=0, atol=POWER_REL_TOL * reference.max())


@pytest.mark.parametrize("index", range(3))
def test_mfcc40_mean_matches_librosa_on_varied_signals(index: int) -> None:
    y = _signals()[index]
    fs = get_feature_set("mfcc40-mean")
    reference = librosa.feature.mfcc(y=y, sr=16_000, n_mfcc=40)
    np.testing.assert_allclose(fs.mfcc(y).T, reference, atol=MFCC_ATOL, rtol=1e-4)
    np.testing.assert_allclose(fs.extract(y), reference.mean(axis=1), atol=MFCC_ATOL)


def test_power_does_not_modify_input_and_is_repeatable() -> None:
    y = _signals()[1]
    before = y.copy()
    frontend = get_feature_set("mfcc40-mean").frontend
    first = frontend.power(y)
    np.testing.assert_array_equal(y, before)
    np.testing.assert_array_equal(first, frontend.power(y))


@pytest.mark.parametrize("length", [400, 640, 2047, 2048])
@pytest.mark.parametrize("name", ["hann", "hamming"])
def test_periodic_window_equals_scipy(name: str, length: int) -> None:
    np.testing.assert_allclose(
        periodic_window(name, length),
        scipy.signal.get_window(name, length, fftbins=True),
        rtol=0,
        atol=1e-12,
    )


def test_serving_start_up_does_not_import_scipy_signal() -> None:
    # Its import is about half of the service's start-up time.
    code = "import sys, service.main; assert 'scipy.signal' not in sys.modules, 'imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
