"""Utterance statistics of spectrum, prosody and voice quality over speech frames
(``speech-stats-v2``, the features of ``models/ser-default.onnx``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from service.features.frontend import (
    FeatureError,
    SpectralConfig,
    UtteranceFeatures,
    validated,
)
from service.features.pitch import PitchTracker
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


@dataclass(frozen=True)
class SpeechStatsConfig:
    """Utterance statistics of spectrum, prosody and voice quality over speech frames.

    Every field is part of the model contract (:meth:`to_dict`). ``flatness_on``,
    ``voice_quality`` and ``floor_margin_db`` have one supported value each (their defaults);
    the others were version 1's, retired with it in service 0.2.0, and
    :class:`SpeechStats` refuses them.
    """

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
    #: Rate the pitch tracker runs at: F0 and its first harmonics lie far below 4 kHz.
    pitch_rate: int = 8000
    #: Pitch frame hop in canonical-rate samples; a multiple of the spectral hop.
    pitch_hop: int = 320
    #: Spectral flatness over the mel bands ("mel", the only one supported).
    flatness_on: str = "mel"
    #: Voicing strength (a harmonics-to-noise proxy) and F0 movement statistics (required).
    voice_quality: bool = True
    #: Frames must also be this many dB above the noise floor (10th percentile of frame
    #: energy) to count as speech. In steady noise the loudest-frame test alone keeps every
    #: noise-only frame, so noise, not speech, sets the statistics.
    floor_margin_db: float = 6.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kind"] = "speech-stats"
        return out


class SpeechStats(UtteranceFeatures):
    """A fixed-length description of how an utterance is spoken.

    Pooled over speech frames only (silence says little about emotion and a lot about the
    recording): MFCC mean, standard deviation and delta standard deviation; spectral
    centroid, bandwidth, flatness and roll-off; frame energy relative to the loudest frame;
    zero-crossing rate; F0 statistics from a normalised-autocorrelation pitch tracker (in
    octaves, so they are ratios, not Hz); voiced fraction; a speaking-rate proxy
    (energy peaks per second); voicing strength and F0 movement.
    Output shape ``(dim,)``; see :meth:`names`.

    Raises :class:`FeatureError` for a configuration the code does not compute (a retired
    version's options, a pitch hop or rate that does not fit the spectral grid).
    """

    config: SpeechStatsConfig

    def __init__(self, config: SpeechStatsConfig) -> None:
        # Each refused value selected a code path that went with speech-stats-v1.
        if config.flatness_on != "mel":
            raise FeatureError(f"flatness_on must be 'mel', not {config.flatness_on!r}")
        if config.voice_quality is not True:
            raise FeatureError("voice_quality must be True: its statistics are always computed")
        if config.floor_margin_db is None:
            raise FeatureError("floor_margin_db must be a number: the noise-floor test is on")
        if config.pitch_hop % config.spectral.hop_length:
            raise FeatureError("pitch_hop must be a multiple of the spectral hop_length")
        if config.spectral.sample_rate % config.pitch_rate:
            raise FeatureError("pitch_rate must divide the spectral sample_rate evenly")
        super().__init__(config)
        self.pitch = PitchTracker(
            sample_rate=config.spectral.sample_rate,
            rate=config.pitch_rate,
            hop=config.pitch_hop,
            frame_length=config.f0_frame_length,
            f0_min=config.f0_min,
            f0_max=config.f0_max,
        )

    def names(self) -> list[str]:
        c = self.config.n_mfcc
        return (
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
            + ["voicing_mean", "voicing_std", "df0_abs_mean", "df0_std"]
        )

    @property
    def dim(self) -> int:
        return len(self.names())

    @cached_property
    def freqs_khz(self) -> np.ndarray:
        """The STFT bins' frequencies in kHz, float32 of shape ``(n_fft // 2 + 1,)``."""
        spec = self.config.spectral
        return np.fft.rfftfreq(spec.n_fft, 1.0 / self.sample_rate).astype(np.float32) / 1000.0

    def speech_frames(self, energy: np.ndarray) -> np.ndarray:
        """Which frames are speech, boolean ``(frames,)``, from their energy in dB ``(frames,)``.

        A speech frame is within ``silence_db`` of the loudest frame and ``floor_margin_db``
        above the noise floor (the 10th percentile); if fewer than three frames pass, every
        frame counts, so a clip of steady sound still gets statistics.
        """
        cfg = self.config
        tenth = energy.shape[0] // 10
        floor = np.partition(energy, tenth)[tenth]
        threshold = max(energy.max() - cfg.silence_db, floor + cfg.floor_margin_db)
        speech = energy > threshold
        if speech.sum() < 3:
            speech[:] = True
        return speech

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Feature vector of shape ``(dim,)``, float32, for mono ``samples`` of shape ``(n,)``."""
        cfg = self.config
        spec = cfg.spectral
        y = validated(samples)
        power = self.frontend.power_of_validated(y)
        mel_power = self.frontend.mel_power(power)
        log_mel = self.frontend.log_mel(power, mel_power=mel_power)
        mfcc = log_mel @ self.frontend.mel_dct[1]
        # Cumulative power by 16-bin block, every frame: the last column is the frame's total
        # power (the energy track, and the spectral shape's denominator) and the speech rows
        # serve the roll-off, one matrix product for all three.
        block_sums = cumulative_block_power(power)
        frame_power = block_sums[:, -1]
        energy = energy_db(frame_power, amin=spec.db_amin)
        speech = self.speech_frames(energy)
        frame_s = spec.hop_length / self.sample_rate

        # MFCC and energy deltas in one pass: the regression runs over whole frames, silence
        # included, so a speech frame's delta sees its true neighbours.
        deltas = delta(np.column_stack([mfcc, energy]), width=cfg.delta_width)[speech]
        p = power[speech]
        centroid, bandwidth, flatness = spectral_shape(
            p, frame_power[speech], mel_power[speech], self.freqs_khz
        )
        rolloff = self.freqs_khz[
            rolloff_bins(p, fraction=cfg.rolloff, block_sums=block_sums[speech])
        ]
        relative_energy = energy[speech] - energy.max()
        zcr = zero_crossing_rate(
            y, frame_length=spec.win_length, hop_length=spec.hop_length, n_frames=power.shape[0]
        )[speech]
        # One matrix of frame tracks, so their means and deviations are two reductions, not
        # twenty (each numpy call costs tens of microseconds at these sizes).
        c = cfg.n_mfcc
        tracks = np.column_stack(
            [mfcc[speech], deltas, centroid, bandwidth, flatness, rolloff, relative_energy, zcr]
        ).astype(np.float64)
        means, stds = column_mean_std(tracks)
        scalar = 2 * c + 1  # centroid, bandwidth, flatness, rolloff, energy, zcr follow here

        # Pitch only where it is used: speech frames on the pitch hop grid.
        stride = cfg.pitch_hop // spec.hop_length
        pitch_speech = speech[::stride]
        pitch_frames = np.flatnonzero(pitch_speech)
        f0, strength = self.pitch.track(y, pitch_frames)
        # In octaves around 100 Hz: ratios, not Hz. The tracker's F0 is positive (its lags are
        # bounded), the floor only guards the logarithm.
        f0_octaves = np.log2(np.maximum(f0, 1e-3) / 100.0)
        voiced_of_speech = strength > cfg.voicing_threshold
        if voiced_of_speech.sum() >= 3:
            octaves = f0_octaves[voiced_of_speech]
            t = pitch_frames[voiced_of_speech] * stride * frame_s
            p10, p50, p90 = percentiles(octaves, (10, 50, 90))
            f0_stats = [*mean_std(octaves), p10, p50, p90, p90 - p10, slope(t, octaves)]
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

        spectral = np.column_stack([means[scalar : scalar + 4], stds[scalar : scalar + 4]])
        parts = [
            means[:c],
            stds[:c],
            stds[c : 2 * c],
            spectral.ravel(),  # centroid, bandwidth, flatness, roll-off: mean, std each
            [
                means[scalar + 4],
                stds[scalar + 4],
                *percentiles(relative_energy, (10, 90)),
                stds[2 * c],
            ],
            [means[scalar + 5], stds[scalar + 5]],
            f0_stats,
            [voiced_of_speech.sum() / pitch_speech.sum(), peaks.sum() / speech_seconds],
            _voice_quality(strength, f0_octaves, voiced_of_speech, pitch_frames),
        ]
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
    strength_stats = list(mean_std(strength)) if strength.size else [0.0] * 2
    pairs = voiced[1:] & voiced[:-1] & (np.diff(frame_index) == 1)
    if pairs.sum() >= 2:
        moves = np.diff(octaves)[pairs]
        return strength_stats + [float(np.abs(moves).mean()), mean_std(moves)[1]]
    return strength_stats + [0.0, 0.0]
