"""The one feature module: every feature the trainer learns from and the service serves.

Feature sets are named and versioned (``mfcc40-mean`` is the paper's baseline). Their
full configuration travels in the model's metadata, and the service refuses a model
whose recorded configuration differs from the one defined here, so training and
serving features cannot drift.

The spectral front end is librosa's (its mel filterbank, its dB scaling, its DCT), computed
with precomputed matrices and one batched real FFT, without importing librosa at serving
time; ``tests/test_features.py`` checks it against ``librosa.feature.mfcc`` and
``librosa.filters.mel`` within stated tolerances.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import lzma
import math
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse

from service.audio import CANONICAL_RATE, resample

#: ``10 * log10(x) == _DB_PER_NEPER * ln(x)``.
_DB_PER_NEPER = np.float32(10.0 / np.log(10.0))


class FeatureError(ValueError):
    """Features cannot be computed for this input or configuration."""


@dataclass(frozen=True)
class SpectralConfig:
    """STFT and mel front end, in librosa's terms (``librosa.feature.melspectrogram``)."""

    sample_rate: int = CANONICAL_RATE
    n_fft: int = 2048
    win_length: int = 2048
    hop_length: int = 512
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    mel_htk: bool = False
    mel_norm: str = "slaney"
    # power_to_db(ref=1.0, amin=1e-10, top_db=80.0), librosa's defaults.
    db_amin: float = 1e-10
    top_db: float | None = 80.0


@dataclass(frozen=True)
class MfccStatsConfig:
    """Utterance-level MFCC statistics."""

    name: str
    version: int
    spectral: SpectralConfig
    n_mfcc: int = 40
    statistics: tuple[str, ...] = ("mean",)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = "mfcc-stats"
        out["statistics"] = list(self.statistics)
        return out


def _hz_to_mel(freqs: np.ndarray, *, htk: bool) -> np.ndarray:
    if htk:
        return 2595.0 * np.log10(1.0 + freqs / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above.
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    linear = freqs / f_sp
    return np.where(
        freqs >= min_log_hz,
        min_log_mel + np.log(np.maximum(freqs, min_log_hz) / min_log_hz) / logstep,
        linear,
    )


def _mel_to_hz(mels: np.ndarray, *, htk: bool) -> np.ndarray:
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters of shape ``(n_mels, n_fft // 2 + 1)``, float32.

    The same matrix as ``librosa.filters.mel`` (checked in the tests), computed here so that
    serving never imports librosa: its import pulls in numba, which needs a writable cache
    directory (unavailable on a read-only container filesystem) and costs start-up time.
    """
    if norm not in ("slaney", None):
        raise FeatureError(f"unsupported mel norm {norm!r}")
    fmax = sample_rate / 2.0 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(
        np.linspace(
            _hz_to_mel(np.array(fmin), htk=htk), _hz_to_mel(np.array(fmax), htk=htk), n_mels + 2
        ),
        htk=htk,
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights.astype(np.float32)


def periodic_window(name: str, length: int) -> np.ndarray:
    """``scipy.signal.get_window(name, length, fftbins=True)``, float64, shape ``(length,)``.

    Hann is computed here because importing scipy.signal costs ~0.5 s of service start-up.
    """
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    import scipy.signal  # noqa: PLC0415 - other windows only, off the start-up path

    return np.asarray(scipy.signal.get_window(name, length, fftbins=True), dtype=np.float64)


class SpectralFrontend:
    """STFT power, log-mel and MFCC frames in librosa's terms, with precomputed matrices."""

    def __init__(self, spectral: SpectralConfig, *, n_mfcc: int) -> None:
        self.spectral = spectral
        self.n_mfcc = n_mfcc

    @cached_property
    def window(self) -> np.ndarray:
        spec = self.spectral
        win = periodic_window(spec.window, spec.win_length)
        left = (spec.n_fft - spec.win_length) // 2
        padded = np.zeros(spec.n_fft, dtype=np.float64)
        padded[left : left + spec.win_length] = win
        return padded.astype(np.float32)

    @cached_property
    def mel_dct(self) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spectral
        mel = mel_filterbank(
            sample_rate=spec.sample_rate,
            n_fft=spec.n_fft,
            n_mels=spec.n_mels,
            fmin=spec.fmin,
            fmax=spec.fmax,
            htk=spec.mel_htk,
            norm=spec.mel_norm,
        )
        dct = scipy.fft.dct(np.eye(spec.n_mels), type=2, norm="ortho", axis=0)[: self.n_mfcc]
        # Transposed so frames @ matrix works on (frames, bins) without copies.
        return np.ascontiguousarray(mel.T), np.ascontiguousarray(dct.T.astype(np.float32))

    @cached_property
    def _mel_sparse(self) -> scipy.sparse.csr_array:
        # Each FFT bin lies in at most two triangular filters: 3% of the dense matrix is
        # non-zero, and the sparse product is ~5x faster than BLAS on the dense one.
        return scipy.sparse.csr_array(self.mel_dct[0].T)

    def mel_power(self, power: np.ndarray) -> np.ndarray:
        """Mel power spectrogram ``power @ mel filters``, shape ``(frames, n_mels)``.

        Sums the filters' non-zero weights only, so values equal the dense product within
        float32 round-off (not bit for bit); the result is a transposed (Fortran-order) view.
        """
        return (self._mel_sparse @ np.ascontiguousarray(power.T)).T

    def power(self, samples: np.ndarray) -> np.ndarray:
        """Power spectrogram of shape ``(frames, n_fft // 2 + 1)``."""
        return self._power(_validated(samples))

    def _power(self, y: np.ndarray) -> np.ndarray:
        """:meth:`power` of samples already through :func:`_validated`."""
        spec = self.spectral
        n = y.shape[0]
        if spec.center:
            half = spec.n_fft // 2
            if spec.pad_mode == "constant":
                y = _zero_padded(y, half)
            else:
                y = np.pad(y, half, mode=spec.pad_mode)  # type: ignore[call-overload]
        if y.shape[0] < spec.n_fft:
            raise FeatureError(f"signal of {n} samples is shorter than n_fft")
        frames = _frames(y, length=spec.n_fft, hop=spec.hop_length)
        # scipy's pocketfft runs float32 natively and is ~5x faster here than numpy.fft
        # (bench/speed.py); workers=1 because parallelism comes from server workers.
        stft = scipy.fft.rfft(frames * self.window, axis=1, workers=1)
        # abs() then square measured faster than real**2 + imag**2 on complex64 (fewer
        # temporaries); np.square because numpy's ** 2.0 on float32 calls powf per element
        # (4x slower).
        magnitude = np.abs(stft).astype(np.float32, copy=False)
        return np.square(magnitude) if spec.power == 2.0 else magnitude**spec.power

    def log_mel(self, power: np.ndarray, *, mel_power: np.ndarray | None = None) -> np.ndarray:
        """``power_to_db`` of the mel spectrogram, shape ``(frames, n_mels)``.

        ``mel_power`` (``power @ mel filters``) may be passed when the caller already has it.
        """
        spec = self.spectral
        if mel_power is None:
            mel_power = self.mel_power(power)
        # 10*log10 as a scaled natural log: numpy's float32 log is vectorised and ~8x faster
        # than its log10 here (same values within float32 round-off).
        db = _DB_PER_NEPER * np.log(np.maximum(mel_power, spec.db_amin))
        if spec.top_db is not None:
            db = np.maximum(db, db.max() - spec.top_db)
        return db

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """MFCC matrix of shape ``(frames, n_mfcc)`` for mono ``samples`` of shape ``(n,)``."""
        return (self.log_mel(self.power(samples)) @ self.mel_dct[1]).astype(np.float32)


class _UtteranceFeatures:
    """What every feature set shares: a named config with a spectral front end."""

    config: MfccStatsConfig | SpeechStatsConfig

    def __init__(self, config: MfccStatsConfig | SpeechStatsConfig) -> None:
        self.config = config
        self.frontend = SpectralFrontend(config.spectral, n_mfcc=config.n_mfcc)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sample_rate(self) -> int:
        return self.config.spectral.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()

    def prepare(self) -> None:
        """Load what the features need before the first clip (nothing: pure numpy)."""


class MfccStats(_UtteranceFeatures):
    """MFCCs of the whole utterance pooled over time into one vector.

    Output shape is ``(n_mfcc * len(statistics),)``, statistics concatenated in order.
    """

    config: MfccStatsConfig

    def __init__(self, config: MfccStatsConfig) -> None:
        unknown = set(config.statistics) - {"mean", "std"}
        if unknown:
            raise FeatureError(f"unknown statistics {sorted(unknown)}")
        super().__init__(config)

    @property
    def dim(self) -> int:
        return self.config.n_mfcc * len(self.config.statistics)

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """MFCC matrix of shape ``(frames, n_mfcc)`` for mono ``samples`` of shape ``(n,)``."""
        return self.frontend.mfcc(samples)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        mfcc = self.mfcc(samples)
        parts = []
        for stat in self.config.statistics:
            parts.append(mfcc.mean(axis=0) if stat == "mean" else mfcc.std(axis=0))
        return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class SpeechStatsConfig:
    """Utterance statistics of spectrum, prosody and voice quality over speech frames."""

    name: str
    version: int
    spectral: SpectralConfig
    n_mfcc: int = 30
    delta_width: int = 5
    # Frames more than this many dB below the loudest frame are silence and not pooled.
    silence_db: float = 40.0
    f0_min: float = 60.0
    f0_max: float = 500.0
    #: Pitch analysis window, in samples at the canonical rate.
    f0_frame_length: int = 640
    voicing_threshold: float = 0.45
    rolloff: float = 0.85
    # Added in version 2 (recorded in the contract only from version 2 on, so version-1
    # models keep their fingerprint). The defaults are version 1's behaviour.
    #: Rate the pitch tracker runs at: F0 and its first harmonics lie far below 4 kHz.
    pitch_rate: int = CANONICAL_RATE
    #: Pitch frame hop in canonical-rate samples; a multiple of the spectral hop.
    pitch_hop: int = 160
    #: Spectral flatness over the linear power bins ("power") or the mel bands ("mel").
    flatness_on: str = "power"
    #: Voicing strength (a harmonics-to-noise proxy) and F0 movement statistics.
    voice_quality: bool = False
    #: Frames must also be this many dB above the noise floor (10th percentile of frame
    #: energy) to count as speech; None = no floor test. In steady noise the loudest-frame
    #: test alone keeps every noise-only frame, so noise, not speech, sets the statistics.
    floor_margin_db: float | None = None
    # Added in version 3 (recorded from version 3 on).
    #: Band-limit the pitch frames to ``pitch_rate / 2`` in the frequency domain (one FFT at
    #: the full rate, the bins above dropped) instead of resampling the whole signal: the
    #: resampler cost more than the pitch frames' FFTs (bench/speed.py).
    pitch_from_spectrum: bool = False
    #: Apply the floor test only to clips whose loudest frame is less than this many dB above
    #: the floor (noisy ones); None = to every clip. Clean recordings keep the loudest-frame
    #: test alone, so their statistics do not depend on how quiet their pauses are.
    floor_gate_below_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for since, fields in _SPEECH_STATS_ADDED_FIELDS.items():
            if self.version < since:
                for key in fields:
                    del out[key]
        out["kind"] = "speech-stats"
        return out


#: Fields by the version that added them: older versions keep their recorded contract (and
#: so their models' fingerprints) unchanged.
_SPEECH_STATS_ADDED_FIELDS = {
    2: ("pitch_rate", "pitch_hop", "flatness_on", "voice_quality", "floor_margin_db"),
    3: ("pitch_from_spectrum", "floor_gate_below_db"),
}


class SpeechStats(_UtteranceFeatures):
    """A fixed-length description of how an utterance is spoken.

    Pooled over speech frames only (silence says little about emotion and a lot about the
    recording): MFCC mean, standard deviation and delta standard deviation; spectral
    centroid, bandwidth, flatness and roll-off; frame energy relative to the loudest frame;
    zero-crossing rate; F0 statistics from a normalised-autocorrelation pitch tracker (in
    octaves, so they are ratios, not Hz); voiced fraction; a speaking-rate proxy
    (energy peaks per second); with ``voice_quality``, voicing strength and F0 movement.
    Output shape ``(dim,)``; see :meth:`names`.
    """

    config: SpeechStatsConfig

    def __init__(self, config: SpeechStatsConfig) -> None:
        if config.flatness_on not in ("power", "mel"):
            raise FeatureError(f"flatness_on must be 'power' or 'mel', not {config.flatness_on!r}")
        if config.pitch_hop % config.spectral.hop_length:
            raise FeatureError("pitch_hop must be a multiple of the spectral hop_length")
        if config.spectral.sample_rate % config.pitch_rate:
            raise FeatureError("pitch_rate must divide the spectral sample_rate evenly")
        super().__init__(config)

    def names(self) -> list[str]:
        c = self.config.n_mfcc
        names = (
            [f"mfcc{i}_mean" for i in range(c)]
            + [f"mfcc{i}_std" for i in range(c)]
            + [f"dmfcc{i}_std" for i in range(c)]
            + [
                f"{f}_{s}"
                for f in ("centroid", "bandwidth", "flatness", "rolloff")
                for s in ("mean", "std")
            ]
            + ["energy_mean", "energy_std", "energy_p10", "energy_p90", "denergy_std"]
            + ["zcr_mean", "zcr_std"]
            + ["f0_mean", "f0_std", "f0_p10", "f0_p50", "f0_p90", "f0_range", "f0_slope"]
            + ["voiced_fraction", "energy_peaks_per_s"]
        )
        if self.config.voice_quality:
            names += ["voicing_mean", "voicing_std", "df0_abs_mean", "df0_std"]
        return names

    @property
    def dim(self) -> int:
        return len(self.names())

    @cached_property
    def _freqs_khz(self) -> np.ndarray:
        spec = self.config.spectral
        return np.fft.rfftfreq(spec.n_fft, 1.0 / self.sample_rate).astype(np.float32) / 1000.0

    @cached_property
    def _f0_tables(self) -> tuple[np.ndarray, np.ndarray, int, int, int, int]:
        """Pitch window, its normalised autocorrelation at pitch-rate lags, FFT size, lag
        range at the pitch rate, and the number of FFT bins kept (those up to
        ``pitch_rate / 2``)."""
        cfg = self.config
        rate = cfg.pitch_rate
        # The frames' own rate: the pitch rate, or the full rate when the band is cut in
        # the spectrum.
        frame_rate = self.sample_rate if cfg.pitch_from_spectrum else rate
        decimation = frame_rate // rate
        n = cfg.f0_frame_length * frame_rate // self.sample_rate
        window = periodic_window("hann", n).astype(np.float32)
        lag_lo = int(np.floor(rate / cfg.f0_max))
        lag_hi = int(np.ceil(rate / cfg.f0_min))
        # Linear (not circular) autocorrelation up to lag_hi needs n + lag_hi points.
        nfft = 1 << int(np.ceil(np.log2(n + decimation * lag_hi + 2)))
        # Dividing by the window's own autocorrelation undoes its taper (Boersma, 1993).
        window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, nfft)) ** 2)
        window_ac = window_ac[::decimation][: lag_hi + 2]
        window_ac = np.maximum(window_ac / window_ac[0], 1e-3).astype(np.float32)
        kept_bins = nfft // (2 * decimation) + 1
        return window, window_ac, nfft, lag_lo, lag_hi, kept_bins

    def _pitch(self, y: np.ndarray, frames_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F0 in Hz and voicing strength for the pitch frames centred on ``frames_at``.

        ``frames_at`` holds frame indices on the pitch hop grid, shape ``(k,)``; both
        outputs have shape ``(k,)``.
        """
        cfg = self.config
        window, _, nfft, _, _, kept_bins = self._f0_tables
        n = window.shape[0]
        if cfg.pitch_from_spectrum:
            hop = cfg.pitch_hop
        else:
            y = resample(y, source_rate=self.sample_rate, target_rate=cfg.pitch_rate)
            hop = cfg.pitch_hop * cfg.pitch_rate // self.sample_rate
        padded = _zero_padded(y, n // 2)
        grid = _frames(padded, length=n, hop=hop)
        frames = grid[frames_at[frames_at < grid.shape[0]]]
        if frames.shape[0] < frames_at.shape[0]:  # resampling may drop a last partial frame
            frames = np.concatenate(
                [frames, np.repeat(grid[-1:], frames_at.shape[0] - frames.shape[0], axis=0)]
            )
        # Frame means as one matrix-vector product: a fifth of the cost of frames.mean(axis=1)
        # here, equal within float32 round-off.
        means = frames @ np.full(n, 1.0 / n, dtype=np.float32)
        frames = (frames - means[:, None]) * window
        spectrum = scipy.fft.rfft(frames, nfft, axis=1, workers=1)[:, :kept_bins]
        power = np.square(np.abs(spectrum)).astype(np.float32, copy=False)
        return self._pitch_from_power(power)

    def _pitch_from_power(self, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F0 in Hz and voicing strength, shape ``(k,)`` each, from the one-sided power
        spectra of ``k`` windowed frames at the pitch rate, shape ``(k, bins)``."""
        cfg = self.config
        _, window_ac, _, lag_lo, lag_hi, _ = self._f0_tables
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
        return cfg.pitch_rate / lag, strength

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        cfg = self.config
        spec = cfg.spectral
        y = _validated(samples)
        power = self.frontend._power(y)
        mel_power = self.frontend.mel_power(power)
        log_mel = self.frontend.log_mel(power, mel_power=mel_power)
        mfcc = log_mel @ self.frontend.mel_dct[1]
        # Cumulative power by 16-bin block, every frame: the last column is the frame's total
        # power (the energy track, and the spectral shape's denominator) and the speech rows
        # serve the roll-off, one matrix product for all three.
        block_sums = _block_sums(power)
        frame_power = block_sums[:, -1]
        energy = _DB_PER_NEPER * np.log(np.maximum(frame_power, spec.db_amin))
        threshold = energy.max() - cfg.silence_db
        if cfg.floor_margin_db is not None:
            tenth = energy.shape[0] // 10
            floor = np.partition(energy, tenth)[tenth]
            noisy = (
                cfg.floor_gate_below_db is None or energy.max() - floor < cfg.floor_gate_below_db
            )
            if noisy:
                threshold = max(threshold, floor + cfg.floor_margin_db)
        speech = energy > threshold
        if speech.sum() < 3:
            speech[:] = True
        frame_s = spec.hop_length / self.sample_rate

        # MFCC and energy deltas in one pass: the regression runs over whole frames, silence
        # included, so a speech frame's delta sees its true neighbours.
        deltas = _delta(np.column_stack([mfcc, energy]), width=cfg.delta_width)[speech]
        p = power[speech]
        freqs = self._freqs_khz
        total = frame_power[speech] + 1e-10
        centroid = p @ freqs / total
        bandwidth = np.sqrt(np.maximum(p @ freqs**2 / total - centroid**2, 0.0))
        flat_source = p if cfg.flatness_on == "power" else mel_power[speech]
        # Row means as products with a vector of 1 / columns (numpy's mean costs ~3x more).
        by_column = np.full(flat_source.shape[1], 1.0 / flat_source.shape[1], dtype=np.float32)
        flatness = np.exp(np.log(flat_source + 1e-10) @ by_column) / (
            flat_source @ by_column + 1e-10
        )
        rolloff = freqs[_rolloff_bins(p, fraction=cfg.rolloff, block_sums=block_sums[speech])]
        relative_energy = energy[speech] - energy.max()
        zcr = _zero_crossing_rate(
            y, frame_length=spec.win_length, hop_length=spec.hop_length, n_frames=power.shape[0]
        )[speech]
        # One matrix of frame tracks, so their means and deviations are two reductions, not
        # twenty (each numpy call costs tens of microseconds at these sizes).
        c = cfg.n_mfcc
        tracks = np.column_stack(
            [mfcc[speech], deltas, centroid, bandwidth, flatness, rolloff, relative_energy, zcr]
        ).astype(np.float64)
        means, stds = _column_mean_std(tracks)
        scalar = 2 * c + 1  # centroid, bandwidth, flatness, rolloff, energy, zcr follow here

        # Pitch only where it is used: speech frames on the pitch hop grid.
        stride = cfg.pitch_hop // spec.hop_length
        pitch_speech = speech[::stride]
        pitch_frames = np.flatnonzero(pitch_speech)
        f0, strength = self._pitch(y, pitch_frames)
        # In octaves around 100 Hz: ratios, not Hz. The tracker's F0 is positive (its lags are
        # bounded), the floor only guards the logarithm.
        f0_octaves = np.log2(np.maximum(f0, 1e-3) / 100.0)
        voiced_of_speech = strength > cfg.voicing_threshold
        if voiced_of_speech.sum() >= 3:
            octaves = f0_octaves[voiced_of_speech]
            t = pitch_frames[voiced_of_speech] * stride * frame_s
            p10, p50, p90 = _percentiles(octaves, (10, 50, 90))
            f0_stats = [*_mean_std(octaves), p10, p50, p90, p90 - p10, _slope(t, octaves)]
        else:
            f0_stats = [0.0] * 7

        # The centred part of the full convolution: what mode="same" gives when there are at
        # least 5 frames, and the right length when there are fewer.
        smoothed = np.convolve(energy, np.ones(5) / 5)[2 : 2 + energy.shape[0]]
        peaks = (
            (smoothed[1:-1] > smoothed[:-2])
            & (smoothed[1:-1] >= smoothed[2:])
            & speech[1:-1]
            & (smoothed[1:-1] > energy.max() - cfg.silence_db / 2)
        )
        speech_seconds = max(speech.sum() * frame_s, frame_s)

        spectral_shape = np.column_stack([means[scalar : scalar + 4], stds[scalar : scalar + 4]])
        parts = [
            means[:c],
            stds[:c],
            stds[c : 2 * c],
            spectral_shape.ravel(),  # centroid, bandwidth, flatness, roll-off: mean, std each
            [
                means[scalar + 4],
                stds[scalar + 4],
                *_percentiles(relative_energy, (10, 90)),
                stds[2 * c],
            ],
            [means[scalar + 5], stds[scalar + 5]],
            f0_stats,
            [voiced_of_speech.sum() / pitch_speech.sum(), peaks.sum() / speech_seconds],
        ]
        if cfg.voice_quality:
            parts.append(_voice_quality(strength, f0_octaves, voiced_of_speech, pitch_frames))
        return np.concatenate(
            [np.asarray(part, dtype=np.float64).ravel() for part in parts]
        ).astype(np.float32)


def _voice_quality(
    strength: np.ndarray, octaves: np.ndarray, voiced: np.ndarray, frame_index: np.ndarray
) -> list[float]:
    """Voicing strength mean/std over speech frames; mean |dF0| and dF0 std in octaves.

    All inputs have shape ``(k,)``, one entry per analysed pitch frame at ``frame_index``
    (``octaves`` is F0 as ``log2(F0 / 100 Hz)``). F0 movement is taken between adjacent voiced
    frames only, so unvoiced or silent gaps do not count as jumps.
    """
    strength_stats = list(_mean_std(strength)) if strength.size else [0.0] * 2
    pairs = voiced[1:] & voiced[:-1] & (np.diff(frame_index) == 1)
    if pairs.sum() >= 2:
        moves = np.diff(octaves)[pairs]
        return strength_stats + [float(np.abs(moves).mean()), _mean_std(moves)[1]]
    return strength_stats + [0.0, 0.0]


def _zero_crossing_rate(
    y: np.ndarray, *, frame_length: int, hop_length: int, n_frames: int
) -> np.ndarray:
    """Sign changes per sample pair in centred frames, shape ``(n_frames,)``.

    Counts changes in blocks of ``gcd(frame_length, hop_length)`` samples, so every frame is a
    difference of two running block counts: the same integers as a frames-by-window matrix,
    linear in the signal length, and without a per-sample running sum (numpy's cumsum is
    scalar code: ~30 us of a 3 s clip).
    """
    padded = _zero_padded(y, frame_length // 2)
    negative = np.signbit(padded)
    block = math.gcd(frame_length, hop_length)
    n_blocks = padded.shape[0] // block + 1
    # changes[i]: sign change between samples i and i + 1; zeros past the end.
    changes = np.zeros(n_blocks * block, dtype=np.uint8)
    np.not_equal(negative[1:], negative[:-1], out=changes[: padded.shape[0] - 1].view(np.bool_))
    # Block sums as a float32 product with ones: exact for these small integers, and ~3x
    # faster than numpy's integer row sums.
    block_counts = changes.reshape(n_blocks, block).astype(np.float32) @ np.ones(block, np.float32)
    before_block = np.zeros(n_blocks + 1, dtype=np.float64)
    np.cumsum(block_counts, out=before_block[1:])
    starts = np.arange(n_frames) * hop_length
    starts = starts[starts + frame_length <= padded.shape[0]]
    # A frame of L samples has L - 1 pairs: its L block-aligned changes minus the last one.
    ends = starts + frame_length
    counts = before_block[ends // block] - before_block[starts // block] - changes[ends - 1]
    rate = counts / (frame_length - 1)
    if rate.shape[0] < n_frames:  # frames past the padded end (never with centred framing)
        rate = np.concatenate([rate, np.zeros(n_frames - rate.shape[0])])
    return rate


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation of 1-D ``x`` in float64: ``x.mean(), x.std()``
    up to round-off, at a quarter of their call overhead (~10 us together)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    mean = float(np.add.reduce(x)) / n
    centred = x - mean
    return mean, math.sqrt(float(centred @ centred) / n)


def _column_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x.mean(axis=0), x.std(axis=0)`` of a ``(rows, columns)`` float64 matrix as two
    products with a vector of 1 / rows: half the time of numpy's reductions here."""
    weights = np.full(x.shape[0], 1.0 / x.shape[0])
    means = weights @ x
    centred = x - means
    return means, np.sqrt(weights @ (centred * centred))


def _percentiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, qs)`` (linear method) from one sort; numpy's costs ~30 us a call."""
    ordered = np.sort(x, kind="stable").astype(np.float64)
    last = ordered.shape[0] - 1
    out = []
    for q in qs:
        position = q / 100.0 * last
        lo = int(np.floor(position))
        hi = min(lo + 1, last)
        out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)))
    return out


def _slope(t: np.ndarray, v: np.ndarray) -> float:
    """Least-squares slope of ``v`` against ``t`` (``np.polyfit(t, v, 1)[0]``); 0 if flat."""
    t = t.astype(np.float64)
    dt = t - t.mean()
    denom = float(dt @ dt)
    return float(dt @ (v - v.mean()) / denom) if denom > 0 else 0.0


def _delta(frames: np.ndarray, *, width: int) -> np.ndarray:
    """Regression deltas over time (librosa.feature.delta's formula) for ``(frames, dims)``.

    ``sum_k k * (x[t + k] - x[t - k]) / (2 * sum_k k**2)`` with edge padding; the output has
    the input's shape, float32.
    """
    half = width // 2
    if half < 1:
        return np.zeros(frames.shape, dtype=np.float32)
    # Edge padding by hand: np.pad's argument handling (~15 us) outweighs the arithmetic here.
    padded = np.concatenate(
        [np.repeat(frames[:1], half, axis=0), frames, np.repeat(frames[-1:], half, axis=0)]
    )
    n = frames.shape[0]
    # Starting from the k = 1 term (not from zeros) gives the same float32 sums in fewer calls.
    out = (padded[half + 1 : half + 1 + n] - padded[half - 1 : half - 1 + n]).astype(np.float32)
    for k in range(2, half + 1):
        out += k * (padded[half + k : half + k + n] - padded[half - k : half - k + n])
    return out / float(2 * sum(k * k for k in range(1, half + 1)))


def _frames(y: np.ndarray, *, length: int, hop: int) -> np.ndarray:
    """Read-only view of shape ``(1 + (len(y) - length) // hop, length)``: frame ``i`` is
    ``y[i * hop : i * hop + length]``. ``sliding_window_view(y, length)[::hop]``, whose
    argument checks cost ~10 us a call; ``y`` must be 1-D and at least ``length`` long."""
    count = 1 + (y.shape[0] - length) // hop
    step = y.strides[0]
    return np.lib.stride_tricks.as_strided(
        y, shape=(count, length), strides=(hop * step, step), writeable=False
    )


def _zero_padded(y: np.ndarray, pad: int) -> np.ndarray:
    """``np.pad(y, pad)`` for 1-D ``y`` at a fraction of its call overhead (~15 us)."""
    out = np.zeros(y.shape[0] + 2 * pad, dtype=y.dtype)
    out[pad : pad + y.shape[0]] = y
    return out


#: Bins per block in :func:`_rolloff_bins`.
_ROLLOFF_BLOCK = 16


@functools.lru_cache(maxsize=8)
def _rolloff_tables(n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices for :func:`_rolloff_bins`: block-cumulative sums, in-block cumulative sums."""
    n_blocks = -(-n_bins // _ROLLOFF_BLOCK)
    block_of = np.arange(n_bins) // _ROLLOFF_BLOCK
    up_to_block = (block_of[:, None] <= np.arange(n_blocks)[None, :]).astype(np.float32)
    within = np.triu(np.ones((_ROLLOFF_BLOCK, _ROLLOFF_BLOCK), dtype=np.float32))
    return up_to_block, within


def _block_sums(power: np.ndarray) -> np.ndarray:
    """Cumulative power up to the end of each 16-bin block, ``(frames, blocks)`` for ``power``
    of shape ``(frames, bins)``; the last column is each frame's total power."""
    return power @ _rolloff_tables(power.shape[1])[0]


def _rolloff_bins(
    power: np.ndarray, *, fraction: float, block_sums: np.ndarray | None = None
) -> np.ndarray:
    """First bin where the cumulative power reaches ``fraction`` of the frame's total.

    ``argmax(cumsum(power, axis=1) >= fraction * total, axis=1)`` for ``power`` of shape
    ``(frames, bins)``, output ``(frames,)`` ints, without the row-by-row cumulative sum
    (numpy's cumsum took 0.25 ms of a 3 s clip's 1.9 ms here): two small matrix products
    find the 16-bin block where the sum crosses, then the bin inside it. Sums differ from a
    running sum by float32 round-off only, so the bin can move only where the running sum
    lies within round-off of the threshold. ``block_sums`` (:func:`_block_sums` of ``power``)
    may be passed when the caller already has it.
    """
    frames, n_bins = power.shape
    within = _rolloff_tables(n_bins)[1]
    if block_sums is None:
        block_sums = _block_sums(power)
    threshold = fraction * block_sums[:, -1:]
    block = np.argmax(block_sums >= threshold, axis=1)
    rows = np.arange(frames)
    before = np.where(block > 0, block_sums[rows, block - 1], 0.0)
    bins = np.minimum(block[:, None] * _ROLLOFF_BLOCK + np.arange(_ROLLOFF_BLOCK), n_bins - 1)
    running = before[:, None] + power.ravel()[(rows * n_bins)[:, None] + bins] @ within
    reached = running >= threshold
    # Round-off can leave the block's last running sum a hair under the threshold.
    inside = np.where(reached.any(axis=1), np.argmax(reached, axis=1), _ROLLOFF_BLOCK - 1)
    return np.asarray(np.minimum(block * _ROLLOFF_BLOCK + inside, n_bins - 1))


def _validated(samples: np.ndarray) -> np.ndarray:
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise FeatureError("samples must be a 1-D numpy array (mono)")
    if samples.shape[0] == 0:
        raise FeatureError("samples are empty")
    y = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(y).all():
        raise FeatureError("samples contain NaN or infinity")
    return y


#: Where the pretrained encoders that feature sets run live: inside the package, so the
#: weights are versioned with the code that feeds them and installed wherever it is.
ENCODER_DIR = Path(__file__).resolve().parent / "encoders"


@dataclass(frozen=True)
class VoiceEncoderConfig:
    """A pretrained frame encoder (ONNX) and the front end it was trained on.

    The default is Resemblyzer's GE2E speaker encoder (``resemblyzer==0.1.4``, Apache-2.0; a
    3-layer LSTM of 256 over 40 power-mel bands of 25 ms every 10 ms, trained for speaker
    verification on thousands of voices), exported by ``bench/export_voice_encoder.py``.
    Its SHA-256 is part of the configuration, so a model trained on one encoder file is
    refused by a service holding another.
    """

    file: str = "resemblyzer-ge2e.onnx"
    sha256: str = "c50b874a06bb7f8e8030b00450801589705951a87d63c3f20996a12a2cc9f274"
    source: str = "resemblyzer==0.1.4 VoiceEncoder (GE2E), Apache-2.0"
    #: Resemblyzer's ``wav_to_mel_spectrogram``: librosa's melspectrogram, power, no dB.
    spectral: SpectralConfig = SpectralConfig(
        n_fft=400, win_length=400, hop_length=160, n_mels=40, top_db=None
    )
    #: Resemblyzer's ``normalize_volume(wav, -30, increase_only=True)``.
    target_dbfs: float = -30.0
    #: The LSTM needs a few frames to say anything; shorter clips are zero-padded to this.
    min_frames: int = 20
    hidden: int = 256
    #: Output groups, in order: the utterance embedding (the d-vector), and the mean and the
    #: standard deviation over frames of the last layer.
    parts: tuple[str, ...] = ("embedding", "mean", "std")
    #: Run the LSTM only from the first to the last frame within this many dB of the loudest
    #: (None: every frame). Resemblyzer trims silences before it embeds. Fed the pauses around
    #: a recording, the frame statistics learn the corpus's room tone: trimmed, the transfer
    #: between corpora gains 4-12 points (docs/accuracy-notes.md), and the LSTM runs fewer
    #: steps (half on RAVDESS's clips).
    edge_trim_db: float | None = 40.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["parts"] = list(self.parts)
        return out


_ENCODER_PARTS = VoiceEncoderConfig().parts

#: How an encoder file is stored in the repository: its bytes in four planes (every first
#: byte of each 4-byte word, then every second, ...), xz-compressed. Lossless, and the planes
#: of float32 weights compress where the interleaved bytes do not (5.7 MB -> 4.8 MB).
PACKED_SUFFIX = ".planes.xz"


def pack_encoder(data: bytes) -> bytes:
    """The stored form of an encoder file's ``data`` (see :data:`PACKED_SUFFIX`)."""
    words = len(data) // 4 * 4
    planes = np.frombuffer(data[:words], dtype=np.uint8).reshape(-1, 4).T.tobytes()
    return lzma.compress(planes + data[words:], preset=9 | lzma.PRESET_EXTREME)


def unpack_encoder(packed: bytes) -> bytes:
    """The encoder file's bytes from :func:`pack_encoder`'s output."""
    raw = lzma.decompress(packed)
    words = len(raw) // 4 * 4
    interleaved = np.frombuffer(raw[:words], dtype=np.uint8).reshape(4, -1).T.tobytes()
    return interleaved + raw[words:]


def read_encoder(path: Path) -> bytes:
    """The bytes of the encoder file at ``path``, or of its packed form beside it.

    Raises :class:`FeatureError` if neither can be read.
    """
    try:
        if path.exists():
            return path.read_bytes()
        return unpack_encoder(path.with_name(path.name + PACKED_SUFFIX).read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise FeatureError(f"voice encoder not readable: {exc}") from exc


class VoiceEncoder:
    """Runs a :class:`VoiceEncoderConfig`'s network on audio; output ``(hidden * parts,)``."""

    def __init__(self, config: VoiceEncoderConfig) -> None:
        unknown = set(config.parts) - set(_ENCODER_PARTS)
        if unknown or not config.parts:
            raise FeatureError(f"encoder parts must be among {_ENCODER_PARTS}, not {config.parts}")
        if config.edge_trim_db is not None and not config.edge_trim_db > 0:
            raise FeatureError(f"edge_trim_db must be positive or None, not {config.edge_trim_db}")
        self.config = config
        self.frontend = SpectralFrontend(config.spectral, n_mfcc=0)
        self._lock = threading.Lock()
        self._session: Any = None
        self._session_pid = -1

    @property
    def path(self) -> Path:
        return ENCODER_DIR / self.config.file

    @property
    def dim(self) -> int:
        return self.config.hidden * len(self.config.parts)

    def session(self) -> Any:
        """The onnxruntime session, made on first use in each process (a session does not
        survive a fork, and the trainer's extraction workers are forked).

        Raises :class:`FeatureError` if the file is missing or is not the configured one.
        """
        if self._session is not None and self._session_pid == os.getpid():
            return self._session
        with self._lock:
            if self._session is None or self._session_pid != os.getpid():
                import onnxruntime as ort  # noqa: PLC0415 - only feature sets with an encoder

                data = read_encoder(self.path)
                digest = hashlib.sha256(data).hexdigest()
                if digest != self.config.sha256:
                    raise FeatureError(
                        f"voice encoder {self.path} has SHA-256 {digest}, but this feature set "
                        f"was defined on {self.config.sha256}: features would drift"
                    )
                options = ort.SessionOptions()
                # One clip's LSTM is sequential work: the parallelism is the server's workers
                # (and the trainer's processes), as for the other features.
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                self._session = ort.InferenceSession(
                    data, options, providers=["CPUExecutionProvider"]
                )
                self._session_pid = os.getpid()
        return self._session

    def mel_power(self, samples: np.ndarray) -> np.ndarray:
        """The encoder's input: power mel frames ``(frames, n_mels)`` of the clip with its
        volume raised (never lowered) to the target level, quiet edges trimmed."""
        config = self.config
        y = _validated(samples)
        mean_square = float(np.dot(y, y)) / y.shape[0]
        dbfs = _DB_PER_NEPER * math.log(mean_square + 1e-12)
        if dbfs < config.target_dbfs:
            y = y * np.float32(10.0 ** ((config.target_dbfs - dbfs) / 20.0))
        mels = self.frontend.mel_power(self.frontend._power(y))
        if config.edge_trim_db is not None:
            level = _DB_PER_NEPER * np.log(mels.sum(axis=1, dtype=np.float64) + 1e-12)
            loud = np.flatnonzero(level > level.max() - config.edge_trim_db)
            mels = mels[loud[0] : loud[-1] + 1]
        return np.ascontiguousarray(mels)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Encoder outputs of shape ``(dim,)``, float32, for mono ``samples`` ``(n,)``."""
        mels = self.mel_power(samples)
        if mels.shape[0] < self.config.min_frames:
            mels = np.pad(mels, ((0, self.config.min_frames - mels.shape[0]), (0, 0)))
        frames, embedding = self.session().run(None, {"mels": mels[None]})
        means, stds = _column_mean_std(frames[0].astype(np.float64))
        outputs = {"embedding": embedding[0], "mean": means, "std": stds}
        return np.concatenate([outputs[part] for part in self.config.parts]).astype(np.float32)


@dataclass(frozen=True)
class StatsWithEncoderConfig:
    """Utterance statistics, then a pretrained encoder's pooled outputs."""

    name: str
    version: int
    statistics: SpeechStatsConfig
    encoder: VoiceEncoderConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "speech-stats+voice-encoder",
            "name": self.name,
            "version": self.version,
            "statistics": self.statistics.to_dict(),
            "encoder": self.encoder.to_dict(),
        }


class StatsWithEncoder:
    """:class:`SpeechStats` followed by :class:`VoiceEncoder` outputs, shape ``(dim,)``.

    Several times the statistics' cost (an LSTM over every 10 ms frame of speech): the features
    of an opt-in model for when accuracy on many voices matters more than throughput.
    """

    def __init__(self, config: StatsWithEncoderConfig) -> None:
        self.config = config
        self.statistics = SpeechStats(config.statistics)
        self.encoder = VoiceEncoder(config.encoder)
        # The statistics' front end: what callers that inspect a feature set's spectra see.
        self.frontend = self.statistics.frontend

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sample_rate(self) -> int:
        return self.config.statistics.spectral.sample_rate

    @property
    def dim(self) -> int:
        return self.statistics.dim + self.encoder.dim

    def names(self) -> list[str]:
        hidden = self.config.encoder.hidden
        encoded = [f"encoder_{p}{i}" for p in self.config.encoder.parts for i in range(hidden)]
        return self.statistics.names() + encoded

    def prepare(self) -> None:
        """Load the encoder now (and check its file), not on the first clip."""
        self.encoder.session()

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        return np.concatenate([self.statistics.extract(samples), self.encoder.extract(samples)])

    def to_dict(self) -> dict[str, Any]:
        return self.config.to_dict()


FeatureSet = MfccStats | SpeechStats | StatsWithEncoder

#: 25 ms windows every 10 ms, the speech standard.
_SPEECH_FRONT_END = SpectralConfig(
    n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=50.0, fmax=8000.0
)

# Version 2: the same statistics as version 1 at about 60% of the cost (bench/speed.py: pitch
# at 8 kHz on speech frames every 20 ms, flatness over mel bands), plus voicing strength, F0
# movement and a noise-floor test in the speech gate.
_SPEECH_STATS_V2 = SpeechStatsConfig(
    name="speech-stats-v2",
    version=2,
    spectral=_SPEECH_FRONT_END,
    pitch_rate=8000,
    pitch_hop=320,
    flatness_on="mel",
    voice_quality=True,
    floor_margin_db=6.0,
)

#: Resemblyzer's encoder, its first LSTM layer float, the other two dynamic int8 with weights
#: per output channel (``bench/export_voice_encoder.py --quantize``, byte for byte from the
#: float file). The first layer's input is mel power, many decades wide, which one int8 scale
#: cannot hold: quantised too, it wrecks the outputs (docs/accuracy-notes.md).
_GE2E_INT8 = VoiceEncoderConfig(
    file="resemblyzer-ge2e-int8.onnx",
    sha256="0e0ce85d4299ee877169c823b9a04f53bcee6296cf6d60d6bda8a66ba0742a55",
    source=(
        "resemblyzer==0.1.4 VoiceEncoder (GE2E), Apache-2.0; LSTM layers 2-3 in int8 "
        "(onnxruntime quantize_dynamic, per channel)"
    ),
)

#: The registry. A model names its feature set; the service looks it up here.
FEATURE_SETS: dict[str, FeatureSet] = {
    # The paper: librosa.feature.mfcc(n_mfcc=40) with librosa's defaults, mean over time.
    "mfcc40-mean": MfccStats(
        MfccStatsConfig(name="mfcc40-mean", version=1, spectral=SpectralConfig(), n_mfcc=40)
    ),
    # Pooled over speech frames only.
    "speech-stats-v1": SpeechStats(
        SpeechStatsConfig(
            name="speech-stats-v1",
            version=1,
            spectral=_SPEECH_FRONT_END,
        )
    ),
    "speech-stats-v2": SpeechStats(_SPEECH_STATS_V2),
    # speech-stats-v2, then Resemblyzer's pretrained speaker encoder (d-vector, frame mean and
    # spread of its last layer): +9 points on unseen RAVDESS actors, at twelve times the cost
    # (docs/accuracy-notes.md). The features of the first models/ser-accurate.onnx.
    "speech-stats-v2+ge2e": StatsWithEncoder(
        StatsWithEncoderConfig(
            name="speech-stats-v2+ge2e",
            version=1,
            statistics=_SPEECH_STATS_V2,
            encoder=VoiceEncoderConfig(),
        )
    ),
    # The same, with the encoder's second and third LSTM layers in int8: outputs within 0.997
    # correlation of the float encoder's, the LSTM in 0.58 of its time. The features of the
    # opt-in models/ser-accurate.onnx.
    "speech-stats-v2+ge2e-int8": StatsWithEncoder(
        StatsWithEncoderConfig(
            name="speech-stats-v2+ge2e-int8",
            version=1,
            statistics=_SPEECH_STATS_V2,
            encoder=_GE2E_INT8,
        )
    ),
}


def get_feature_set(name: str) -> FeatureSet:
    """The registered feature set called ``name``; :class:`FeatureError` if unknown."""
    try:
        return FEATURE_SETS[name]
    except KeyError:
        raise FeatureError(
            f"unknown feature set {name!r}; known: {', '.join(sorted(FEATURE_SETS))}"
        ) from None


def extract_features(samples: np.ndarray, *, feature_set: str) -> np.ndarray:
    """Feature vector of shape ``(dim,)`` for canonical-rate mono ``samples``."""
    return get_feature_set(feature_set).extract(samples)


def config_fingerprint(config: dict[str, Any]) -> str:
    """Canonical JSON of a feature configuration, for equality checks and cache keys."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
