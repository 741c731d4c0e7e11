"""The spectral front end every feature set starts from: STFT power, mel bands, log-mel, MFCC.

It is librosa's (its mel filterbank, its dB scaling, its DCT), computed with precomputed
matrices and one batched real FFT, without importing librosa at serving time;
``tests/test_features.py`` checks it against ``librosa.feature.mfcc`` and
``librosa.filters.mel`` within stated tolerances. The small framing helpers the feature sets
share live here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import scipy.fft
import scipy.sparse

from service.audio import CANONICAL_RATE

#: ``10 * log10(x) == DB_PER_NEPER * ln(x)``.
DB_PER_NEPER = np.float32(10.0 / np.log(10.0))


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
        return self.power_of_validated(validated(samples))

    def power_of_validated(self, y: np.ndarray) -> np.ndarray:
        """:meth:`power` of samples already through :func:`validated`."""
        spec = self.spectral
        n = y.shape[0]
        if spec.center:
            half = spec.n_fft // 2
            if spec.pad_mode == "constant":
                y = zero_padded(y, half)
            else:
                y = np.pad(y, half, mode=spec.pad_mode)  # type: ignore[call-overload]
        if y.shape[0] < spec.n_fft:
            raise FeatureError(f"signal of {n} samples is shorter than n_fft")
        frames = frame_view(y, length=spec.n_fft, hop=spec.hop_length)
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
        db = DB_PER_NEPER * np.log(np.maximum(mel_power, spec.db_amin))
        if spec.top_db is not None:
            db = np.maximum(db, db.max() - spec.top_db)
        return db

    def mfcc(self, samples: np.ndarray) -> np.ndarray:
        """MFCC matrix of shape ``(frames, n_mfcc)`` for mono ``samples`` of shape ``(n,)``."""
        return (self.log_mel(self.power(samples)) @ self.mel_dct[1]).astype(np.float32)


class _FrontendConfig(Protocol):
    """What :class:`UtteranceFeatures` reads from a feature set's configuration."""

    @property
    def name(self) -> str: ...

    @property
    def spectral(self) -> SpectralConfig: ...

    @property
    def n_mfcc(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class UtteranceFeatures:
    """What the MFCC and speech statistics share: a named config with a spectral front end."""

    config: _FrontendConfig

    def __init__(self, config: _FrontendConfig) -> None:
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


def validated(samples: np.ndarray) -> np.ndarray:
    """``samples`` as float32 of shape ``(n,)``, n > 0, all finite; :class:`FeatureError` if
    they are not a non-empty 1-D array of finite values."""
    if not isinstance(samples, np.ndarray) or samples.ndim != 1:
        raise FeatureError("samples must be a 1-D numpy array (mono)")
    if samples.shape[0] == 0:
        raise FeatureError("samples are empty")
    y = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(y).all():
        raise FeatureError("samples contain NaN or infinity")
    return y


def frame_view(y: np.ndarray, *, length: int, hop: int) -> np.ndarray:
    """Read-only view of shape ``(1 + (len(y) - length) // hop, length)``: frame ``i`` is
    ``y[i * hop : i * hop + length]``. ``sliding_window_view(y, length)[::hop]``, whose
    argument checks cost ~10 us a call; ``y`` must be 1-D and at least ``length`` long."""
    count = 1 + (y.shape[0] - length) // hop
    step = y.strides[0]
    return np.lib.stride_tricks.as_strided(
        y, shape=(count, length), strides=(hop * step, step), writeable=False
    )


def zero_padded(y: np.ndarray, pad: int) -> np.ndarray:
    """``np.pad(y, pad)`` for 1-D ``y`` at a fraction of its call overhead (~15 us)."""
    out = np.zeros(y.shape[0] + 2 * pad, dtype=y.dtype)
    out[pad : pad + y.shape[0]] = y
    return out
