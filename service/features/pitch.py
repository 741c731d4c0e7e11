"""The speech statistics' F0 tracker: normalised autocorrelation of band-limited frames."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.fft

from service.audio import resample
from service.features.frontend import frame_view, periodic_window, zero_padded


class PitchTracker:
    """F0 and voicing strength of frames of a signal, after resampling it to ``rate``.

    F0 and its first harmonics lie far below 4 kHz, so the tracker runs at a reduced rate
    (``speech-stats-v2``: 8 kHz), on the frames the caller asks for only.

    Parameters
    ----------
    sample_rate : int
        Rate of the signals given to :meth:`track`.
    rate : int
        Rate the tracker resamples to; divides ``sample_rate``.
    hop : int
        Hop between pitch frames, in samples at ``sample_rate``.
    frame_length : int
        Analysis window, in samples at ``sample_rate``.
    f0_min, f0_max : float
        The F0 search range in Hz.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        rate: int,
        hop: int,
        frame_length: int,
        f0_min: float,
        f0_max: float,
    ) -> None:
        self.sample_rate = sample_rate
        self.rate = rate
        self.hop = hop
        self.frame_length = frame_length
        self.f0_min = f0_min
        self.f0_max = f0_max

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        """Pitch window, its normalised autocorrelation, FFT size and the lag range, all at
        the tracker's rate."""
        rate = self.rate
        n = self.frame_length * rate // self.sample_rate
        window = periodic_window("hann", n).astype(np.float32)
        lag_lo = int(np.floor(rate / self.f0_max))
        lag_hi = int(np.ceil(rate / self.f0_min))
        # Linear (not circular) autocorrelation up to lag_hi needs n + lag_hi points.
        nfft = 1 << int(np.ceil(np.log2(n + lag_hi + 2)))
        # Dividing by the window's own autocorrelation undoes its taper (Boersma, 1993).
        window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, nfft)) ** 2)[: lag_hi + 2]
        window_ac = np.maximum(window_ac / window_ac[0], 1e-3).astype(np.float32)
        return window, window_ac, nfft, lag_lo, lag_hi

    def track(self, y: np.ndarray, frames_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F0 in Hz and voicing strength for the pitch frames centred on ``frames_at``.

        ``y`` is float32 of shape ``(n,)`` at :attr:`sample_rate`; ``frames_at`` holds frame
        indices on the :attr:`hop` grid, shape ``(k,)``; both outputs have shape ``(k,)``.
        """
        window, _, nfft, _, _ = self._tables
        n = window.shape[0]
        y = resample(y, source_rate=self.sample_rate, target_rate=self.rate)
        hop = self.hop * self.rate // self.sample_rate
        padded = zero_padded(y, n // 2)
        grid = frame_view(padded, length=n, hop=hop)
        frames = grid[frames_at[frames_at < grid.shape[0]]]
        if frames.shape[0] < frames_at.shape[0]:  # resampling may drop a last partial frame
            frames = np.concatenate(
                [frames, np.repeat(grid[-1:], frames_at.shape[0] - frames.shape[0], axis=0)]
            )
        # Frame means as one matrix-vector product: a fifth of the cost of frames.mean(axis=1)
        # here, equal within float32 round-off.
        means = frames @ np.full(n, 1.0 / n, dtype=np.float32)
        frames = (frames - means[:, None]) * window
        spectrum = scipy.fft.rfft(frames, nfft, axis=1, workers=1)
        power = np.square(np.abs(spectrum)).astype(np.float32, copy=False)
        return self._from_power(power)

    def _from_power(self, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F0 in Hz and voicing strength, shape ``(k,)`` each, from the one-sided power
        spectra of ``k`` windowed frames at the tracker's rate, shape ``(k, bins)``."""
        _, window_ac, _, lag_lo, lag_hi = self._tables
        # The autocorrelation is the inverse transform of the power spectrum; as that is real
        # and even, a type-I DCT computes it (up to scale, divided out below) at half the cost.
        ac = scipy.fft.dct(power, type=1, axis=1, workers=1)[:, : lag_hi + 2]
        ac = ac / np.maximum(ac[:, :1], 1e-12) / window_ac
        search = ac[:, lag_lo : lag_hi + 1]
        width = search.shape[1]
        # The shortest lag within 10% of the best peak, then its local maximum: avoids the
        # octave-down errors that a plain argmax makes at multiples of the period.
        first = np.argmax(search >= 0.9 * search.max(axis=1, keepdims=True), axis=1)
        reach = 8
        # One gather of the lags first-1 .. first+reach+1 (clipped to the range) serves both
        # the local maximum and its neighbours for the interpolation: fancy indexing costs
        # ~10 us a call here, more than the arithmetic.
        rows = np.arange(search.shape[0])
        # np.minimum(np.maximum()) rather than np.clip: same integers, a third of the cost.
        lags = np.minimum(np.maximum(first[:, None] + np.arange(-1, reach + 2), 0), width - 1)
        near = ac.ravel()[(rows * ac.shape[1] + lag_lo)[:, None] + lags]
        at = 1 + np.argmax(near[:, 1 : reach + 2], axis=1)
        best = lags[rows, at]
        strength = near[rows, at]
        lag = (best + lag_lo).astype(np.float64)
        # Parabolic interpolation around the peak for sub-sample lag precision; a peak at
        # either end of the range has no neighbour on one side and is left as it is.
        a, b, c = near[rows, at - 1], strength, near[rows, at + 1]
        denom = a - 2 * b + c
        usable = (best > 0) & (best < width - 1) & (np.abs(denom) > 1e-9)
        shift = np.where(usable, 0.5 * (a - c) / np.where(usable, denom, 1), 0.0)
        lag += np.minimum(np.maximum(shift, -0.5), 0.5)
        return self.rate / lag, strength
