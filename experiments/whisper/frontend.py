"""Whisper's log-mel front end in numpy (no torch), written from openai-whisper's formula.

openai-whisper (``whisper/audio.py``) computes, for 16 kHz mono audio::

    stft = torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2          # centred, reflect-padded; last frame dropped
    mel = filters @ magnitudes                       # filters: librosa mel, htk=False, slaney norm
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    log_spec = (log_spec + 4.0) / 4.0

so a clip of ``n`` samples gives ``n // 160`` frames (100 per second), and the encoder's two
convolutions (the second with stride 2) give one output frame per 20 ms.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's 30 s window: 3000 mel frames, 1500 encoder frames


def _hz_to_mel_slaney(hz: np.ndarray | float) -> np.ndarray:
    # Slaney's scale: linear below 1 kHz (3 bands per 200 Hz), logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    above = hz >= min_log_hz
    mel = np.where(above, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)
    return mel


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    hz = mel * f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), hz)


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular mel filters on the Slaney scale with Slaney (area) normalisation.

    Equivalent to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` (its defaults
    ``htk=False, norm='slaney'``), which is what openai-whisper's ``mel_filters.npz`` holds.

    Returns
    -------
    ndarray, shape (n_mels, n_fft // 2 + 1), float32
    """
    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel_slaney(0.0), _hz_to_mel_slaney(sr / 2), n_mels + 2)
    hz_pts = _mel_to_hz_slaney(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filters()
# torch.hann_window is periodic (denominator N, not N-1).
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def power_spectrogram(audio: np.ndarray) -> np.ndarray:
    """Centred STFT power, Whisper framing.

    Parameters
    ----------
    audio : ndarray, shape (n_samples,)
        16 kHz mono float audio.

    Returns
    -------
    ndarray, shape (n_fft // 2 + 1, n_samples // 160), float32
    """
    x = np.asarray(audio, dtype=np.float32)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded,
        shape=(n_frames, N_FFT),
        strides=(padded.strides[0] * HOP, padded.strides[0]),
        writeable=False,
    )
    spec = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return power[:-1].T  # whisper drops the last frame: n_samples // 160 frames


def log_mel(audio: np.ndarray, pad_to: int | None = None) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram.

    Parameters
    ----------
    audio : ndarray, shape (n_samples,)
        16 kHz mono float audio in [-1, 1].
    pad_to : int, optional
        Zero-pad the audio to this many samples first (``WINDOW_SAMPLES`` reproduces
        Whisper's 30 s window; longer audio is trimmed). ``None`` keeps the clip's length.

    Returns
    -------
    ndarray, shape (80, n_samples // 160), float32
        The clamp to ``max - 8`` is taken over the returned frames, as whisper does.
    """
    x = np.asarray(audio, dtype=np.float32)
    if pad_to is not None:
        x = np.pad(x[:pad_to], (0, max(0, pad_to - len(x))))
    mel = _FILTERS @ power_spectrogram(x)
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


def even_frames(mel: np.ndarray) -> np.ndarray:
    """Drop a trailing odd frame so the stride-2 convolution maps 2 frames to 1 exactly.

    Parameters
    ----------
    mel : ndarray, shape (80, frames)

    Returns
    -------
    ndarray, shape (80, 2 * (frames // 2))
    """
    return mel[:, : 2 * (mel.shape[1] // 2)]
