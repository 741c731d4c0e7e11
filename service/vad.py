"""The one speech detector: loud enough, voiced (periodic at a voice's pitch), and moving.

``/predict``, ``/predict/raw``, each ``/predict/batch`` item, ser-predict and the batch scorer
answer only a clip in which this finds speech; the timeline classifies the segments it finds;
the WebSocket stream announces them and sends emotions only for windows that hold some.

Every 30 ms frame gets two measures, taken on the audio brought down to 4 kHz (the mean of each
group of 4 samples at 16 kHz, which is all the band below needs):

- its energy, mean square in dBFS;
- its voicing: the highest normalised autocorrelation at a lag in the pitch range of voices
  (60-500 Hz), on a 60 ms Hann window centred on the frame (three periods of the lowest pitch,
  as in Boersma's pitch tracker; the window's own autocorrelation is divided out, and the peak
  refined by a parabola). The autocorrelation comes from the window's power spectrum kept to
  100-1500 Hz, where a voice's harmonics are strong, and half-whitened (divided by the square
  root of its 300 Hz moving average): pink and brown noise's tilt then no longer looks like
  correlation at the short lags, while speech in white or babble noise keeps its harmonics
  (full whitening lifts the bands that noise fills, and lost speech at 10 dB SNR). One batch
  of FFTs for all the frames of a call, no Python loop per frame.

A frame is *voiced* when its energy is at least ``level_db`` and its voicing at least
``voicing``. Voiced frames separated by at most ``bridge_gap_s`` (unvoiced consonants, short
pauses) join into runs. A run is speech when it holds at least ``min_voiced_s`` of voiced frames
and the energies of its frames, ``pad_s`` either side included, span at least ``min_range_db``:
a word's onset and release and its syllables move the level, a hum or a steady tone does not.
A speech run, padded by ``pad_s`` on each side (the unvoiced onset and release), is a segment;
a recording has speech when it has a segment, and its ``speech_s`` is their total length.

Every rule is absolute (no noise floor, no peak level), so a frame's verdict depends only on the
audio within its window: a whole recording (:func:`speech_segments`), the same audio in blocks
(:func:`analyse_blocks`, the timeline's first pass over a long file) and live audio
(:class:`StreamingVad`, the stream) give the same segments, to the sample. Validation on the
corpora, on generated noise and on speech in noise, and the cost against a model's features:
``python -m bench.vad_check``.

The speech gate inside the ``speech-stats-v2`` feature set is part of that feature set's
recorded definition, not this detector: the bundled models' features depend on it.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.fft
import scipy.ndimage
import soxr


@dataclass(frozen=True)
class VadConfig:
    """The detector's settings (see the module docstring for what each one decides)."""

    frame_s: float = 0.03
    #: The measures are taken at this rate: the band below fits, and a quarter of 16 kHz
    #: costs a quarter as much.
    analysis_rate: int = 4000
    #: Analysis window of the voicing measure, centred on its frame: three periods at 60 Hz.
    window_s: float = 0.06
    min_pitch_hz: float = 60.0
    max_pitch_hz: float = 500.0
    #: The band the autocorrelation is measured in, and the width of the whitening average.
    band_hz: tuple[float, float] = (100.0, 1500.0)
    whiten_hz: float = 300.0
    #: A frame quieter than this (dBFS) is never speech: dither and hiss are far below it,
    #: the quietest corpus clip (a RAVDESS one, peaking at -46 dBFS) well above it.
    level_db: float = -60.0
    #: Voicing of a voiced frame. Measured over 3,440 generated noise clips: 99.9% of their
    #: frames under 0.48, none of them with more than one frame at 0.55.
    voicing: float = 0.55
    #: Three frames. 0.15 s refused 0.3% of the corpus clips (short shouted words of
    #: TurEV-DB, two vowels of 60 ms each); noise never reaches even two frames.
    min_voiced_s: float = 0.09
    min_range_db: float = 3.0
    bridge_gap_s: float = 0.3
    pad_s: float = 0.1


#: The settings of every entry point: /predict, the timeline, the stream, ser-predict.
DEFAULT_VAD = VadConfig()


class FrameStats(NamedTuple):
    """Per-frame measures, each of shape ``(n_frames,)``, float64."""

    energy_db: np.ndarray
    voicing: np.ndarray


def frame_length(config: VadConfig, sample_rate: int) -> int:
    """Samples per frame at ``sample_rate`` (at least one)."""
    return max(1, int(config.frame_s * sample_rate))


class _Analysis:
    """The fixed arrays of the voicing measure at one sample rate (built once, shared)."""

    def __init__(self, config: VadConfig, rate: int) -> None:
        self.frame = frame_length(config, rate)
        #: Samples of analysis window on each side of the frame.
        self.margin = max(0, (int(config.window_s * rate) - self.frame) // 2)
        self.window = self.frame + 2 * self.margin
        self.min_lag = max(1, int(rate / config.max_pitch_hz))
        self.max_lag = min(int(math.ceil(rate / config.min_pitch_hz)), self.window - 1)
        # Room for every lag without circular wrap-around.
        self.nfft = scipy.fft.next_fast_len(self.window + self.max_lag, real=True)
        self.taper = np.hanning(self.window + 2)[1:-1].astype(np.float32)
        power = np.abs(np.fft.rfft(self.taper.astype(np.float64), self.nfft)) ** 2
        taper_r = np.fft.irfft(power, self.nfft)[: self.max_lag + 2]
        self.taper_autocorrelation = (taper_r / taper_r[0]).astype(np.float32)
        freqs = np.fft.rfftfreq(self.nfft, 1.0 / rate)
        low, high = config.band_hz
        #: The bins up to the band's top; the whitening average reaches ``half`` bins beyond.
        self.top = int(np.searchsorted(freqs, high, side="right"))
        half = min(int(config.whiten_hz / 2 * self.nfft / rate), freqs.size - self.top)
        self.half, self.bins = half, self.top + half
        self.band = ((freqs >= low) & (freqs <= high)).astype(np.float32)[: self.top]

    def measure(self, windows: np.ndarray) -> FrameStats:
        """Energy and voicing of frames from their analysis windows.

        Parameters
        ----------
        windows : numpy.ndarray
            Shape ``(n, window)``: each frame with ``margin`` samples either side.

        Returns
        -------
        FrameStats
            Each of shape ``(n,)``.
        """
        n = windows.shape[0]
        frames = windows[:, self.margin : self.margin + self.frame]
        energy = 10 * np.log10(np.square(frames).sum(axis=1) / self.frame + 1e-12)
        # float32 throughout (scipy's FFTs keep single precision): half the time of float64.
        # The zero padding is written here once, rather than copied again inside scipy. No
        # mean is removed: the band starts well above the taper's leakage from DC.
        x = np.zeros((n, self.nfft), dtype=np.float32)
        np.multiply(windows, self.taper, out=x[:, : self.window])
        spectrum = scipy.fft.rfft(x, axis=1, overwrite_x=True)[:, : self.bins]
        power = spectrum.real**2 + spectrum.imag**2
        # Complex (irfft would convert a real array, at a cost); zero above the band's top.
        weighted = np.zeros((n, self.nfft // 2 + 1), dtype=np.complex64)
        weighted.real[:, : self.top] = (
            power[:, : self.top] * self.band / np.sqrt(self._local_power(power) + 1e-20)
        )
        r = scipy.fft.irfft(weighted, self.nfft, axis=1, overwrite_x=True)
        r = r[:, : self.max_lag + 2]
        zero = r[:, 0] <= 1e-12  # no energy in the band: nothing to correlate
        r = r / np.where(zero, 1.0, r[:, 0])[:, None] / self.taper_autocorrelation
        voicing = np.where(zero, 0.0, _peak(r, self.min_lag, self.max_lag)).astype(np.float64)
        return FrameStats(energy, voicing)

    def _local_power(self, power: np.ndarray) -> np.ndarray:
        """Mean power within ``whiten_hz / 2`` of each band bin: shape ``(n, top)``.

        In float64 (a spectrum spans 80 dB and more; the filter keeps a running sum), row by
        row: a frame's value does not depend on the batch it is measured in (a matrix
        product's blocking would change its last bits, and the stream could then disagree
        with the timeline at the threshold). Edge bins are repeated at the spectrum's start.
        """
        window = 2 * self.half + 1
        local = scipy.ndimage.uniform_filter1d(
            power.astype(np.float64), window, axis=1, mode="nearest"
        )
        return np.asarray(local[:, : self.top].astype(np.float32))


def _peak(r: np.ndarray, low: int, high: int) -> np.ndarray:
    """Height of each row's highest peak at lags ``low..high``, shape ``(n,)``.

    ``r`` has shape ``(n, > high + 1)``. A lag step at the analysis rate (0.25 ms at 4 kHz) is
    coarse against the period of the band's top harmonics, so the peak is refined by a
    parabola through it and its two neighbours.
    """
    best = low + np.argmax(r[:, low : high + 1], axis=1)
    left, centre, right = np.take_along_axis(r, best[:, None] + np.arange(-1, 2), axis=1).T
    curve = left - 2 * centre + right
    # Only a true maximum (curving down) is refined; the offset stays within half a lag.
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
    return np.asarray(centre - 0.25 * (left - right) * np.clip(shift, -0.5, 0.5))


@functools.lru_cache(maxsize=8)
def _analysis(config: VadConfig, rate: int) -> _Analysis:
    return _Analysis(config, rate)


class _Decimator:
    """Audio at ``rate`` to ``target`` Hz, chunk by chunk, the same whatever the chunks.

    When ``rate`` is a whole multiple ``k`` of ``target`` (16 kHz to 4 kHz), each output
    sample is the mean of ``k`` input samples: cheap (a sixth of soxr's time), and what folds
    back into the band from above 2 kHz is weak in speech and, in noise, only noise (measured
    in ``bench/vad_check.py``: the same clips kept as with soxr, to one in 1,500). Other rates
    go through a soxr stream (HQ), whose output equals one-shot resampling.
    """

    def __init__(self, rate: int, target: int) -> None:
        self.factor = rate // target if rate % target == 0 else 0
        self._carry = np.zeros(0, dtype=np.float32)
        self._soxr = (
            None
            if self.factor
            else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
        )

    def push(self, samples: np.ndarray, *, last: bool = False) -> np.ndarray:
        """The output for ``samples`` (shape ``(m,)``, float32); ``last`` flushes."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._soxr is not None:
            return np.asarray(self._soxr.resample_chunk(samples, last=last))
        k = self.factor
        if k == 1:
            return samples
        data = np.concatenate([self._carry, samples]) if self._carry.size else samples
        whole = data.shape[0] // k * k
        self._carry = data[whole:].copy()
        out = data[0:whole:k].copy()
        for j in range(1, k):  # a fixed order of additions: any chunking gives the same sums
            out += data[j:whole:k]
        out *= np.float32(1.0 / k)
        return out


class FrameAnalyser:
    """Frame measures of audio that arrives in blocks, the same whatever the block sizes.

    Frame ``k`` covers samples ``[k * frame, (k + 1) * frame)``. The audio is brought to
    ``config.analysis_rate`` as it comes (:class:`_Decimator`), and each frame's analysis
    window reaches ``margin`` samples (15 ms) further on each side (zeros before the start and
    after the end), so a frame is measured once its window's last sample has arrived (and the
    last frames at :meth:`finish`).

    Parameters
    ----------
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings.
    batch : int
        :meth:`push` measures frames once at least this many are ready (one batch of FFTs
        has a fixed cost): 1 to judge each frame as soon as possible.
    """

    def __init__(
        self, sample_rate: int, config: VadConfig = DEFAULT_VAD, *, batch: int = 1
    ) -> None:
        self.analysis = _analysis(config, config.analysis_rate)
        self.batch = batch
        self.frame = frame_length(config, sample_rate)  # at the input's rate
        self.received = 0  # samples pushed so far, at the input's rate
        self.frames = 0  # frames measured so far
        self._decimator = _Decimator(sample_rate, config.analysis_rate)
        # At the analysis rate, from the window start of the next frame to measure: it starts
        # with the leading zeros.
        self._pending = np.zeros(self.analysis.margin, dtype=np.float32)

    def push(self, samples: np.ndarray) -> FrameStats:
        """Measure the frames whose windows ``samples`` (shape ``(m,)``) complete."""
        self.received += samples.shape[0]
        self._add(samples, last=False)
        return self._measure(self._pending.shape[0], least=self.batch)

    def finish(self) -> FrameStats:
        """End of the audio: the remaining whole frames, their windows padded with zeros."""
        self._add(np.zeros(0, dtype=np.float32), last=True)
        whole = self.received // self.frame - self.frames
        needed = (whole - 1) * self.analysis.frame + self.analysis.window
        if whole > 0 and self._pending.shape[0] < needed:
            pad = np.zeros(needed - self._pending.shape[0], dtype=np.float32)
            self._pending = np.concatenate([self._pending, pad])
        stats = self._measure(self._pending.shape[0], limit=max(0, whole))
        self._pending = self._pending[:0]
        return stats

    def _add(self, samples: np.ndarray, *, last: bool) -> None:
        samples = self._decimator.push(samples, last=last)
        if samples.size:
            self._pending = np.concatenate([self._pending, samples])

    def _measure(self, available: int, *, limit: int | None = None, least: int = 1) -> FrameStats:
        window, frame = self.analysis.window, self.analysis.frame
        count = 0 if available < window else (available - window) // frame + 1
        if limit is not None:
            count = min(count, limit)
        if count == 0 or count < least:
            return FrameStats(np.zeros(0), np.zeros(0))
        views = np.lib.stride_tricks.sliding_window_view(self._pending, window)[::frame][:count]
        stats = self.analysis.measure(views)
        self.frames += count
        self._pending = self._pending[count * frame :]
        return stats


def frame_stats(
    samples: np.ndarray, *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> FrameStats:
    """Frame measures of mono ``samples`` (shape ``(n,)``), all at once.

    The same values as :func:`analyse_blocks` gives for any split of ``samples`` into blocks
    (soxr's one-shot output equals its stream's), in one resampling and one batch of FFTs.

    Returns
    -------
    FrameStats
        Shape ``(n // frame,)`` each (a trailing partial frame is left out).
    """
    analysis = _analysis(config, config.analysis_rate)
    whole = samples.shape[0] // frame_length(config, sample_rate)
    samples = _Decimator(sample_rate, config.analysis_rate).push(samples, last=True)
    padded = np.zeros(max(0, whole - 1) * analysis.frame + analysis.window, dtype=np.float32)
    used = min(samples.shape[0], padded.shape[0] - analysis.margin)
    padded[analysis.margin : analysis.margin + used] = samples[:used]
    if whole == 0:
        return FrameStats(np.zeros(0), np.zeros(0))
    views = np.lib.stride_tricks.sliding_window_view(padded, analysis.window)[:: analysis.frame]
    return analysis.measure(views[:whole])


def analyse_blocks(
    blocks: Iterable[np.ndarray], *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> tuple[FrameStats, int]:
    """Frame measures of a whole recording given as blocks.

    Parameters
    ----------
    blocks : iterable of numpy.ndarray
        Consecutive mono blocks, each of shape ``(m,)``; frames may straddle blocks.
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings.

    Returns
    -------
    stats : FrameStats
        Shape ``(n // frame,)`` each (a trailing partial frame is left out).
    n : int
        Total number of samples.
    """
    # Measured about every 10 s of audio: few FFT batches, little held at a time.
    analyser = FrameAnalyser(sample_rate, config, batch=int(10 / config.frame_s))
    parts = [analyser.push(block) for block in blocks]
    parts.append(analyser.finish())
    energy = np.concatenate([p.energy_db for p in parts])
    voicing = np.concatenate([p.voicing for p in parts])
    return FrameStats(energy, voicing), analyser.received


def _whole_frames(seconds: float, config: VadConfig) -> int:
    """Frames covering ``seconds`` (so that 5 frames of 0.03 s are 0.15 s, whatever the
    rounding)."""
    return math.ceil(seconds / config.frame_s - 1e-9)


class _Runs:
    """Joins voiced frames into runs across short gaps and keeps the runs that are speech.

    Every frame is pushed, in order, with :meth:`push`; it returns a run that has just closed
    and is speech, as ``(start, end)`` frame indices (end exclusive); so does :meth:`finish`
    at the end of the audio. A run is speech when it has ``min_voiced_s`` of voiced frames and
    the energies of its frames, padding included (``pad_s`` either side, voiced or not), span
    ``min_range_db``: a word's onset and release, its syllables and its pauses move the level,
    a hum or a tone does not.
    """

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self.min_voiced = _whole_frames(config.min_voiced_s, config)
        self.pad = _whole_frames(config.pad_s, config)
        self.recent: deque[float] = deque(maxlen=self.pad)  # the frames before this one
        self.start: int | None = None
        self.end = 0
        self.voiced = 0
        self.low = math.inf  # energy range of the frames from start - pad to end
        self.high = -math.inf
        self.tail: list[float] = []  # energies of the frames after end, while open

    def _bridges(self, index: int) -> bool:
        """Whether a voiced frame at ``index`` would join the open run."""
        return (index - self.end) * self.config.frame_s <= self.config.bridge_gap_s

    @property
    def kept(self) -> bool:
        """Whether the open run is already speech (it stays so as it grows)."""
        if self.start is None or self.voiced < self.min_voiced:
            return False
        after = self.tail[: self.pad]
        low, high = min([self.low, *after]), max([self.high, *after])
        return high - low >= self.config.min_range_db

    def push(self, index: int, energy_db: float, is_voiced: bool) -> tuple[int, int] | None:
        """Frame ``index``: its energy, and whether it is voiced."""
        closed = None
        if is_voiced:
            if self.start is not None and not self._bridges(index):
                closed = self.finish()
            if self.start is None:
                self.start, self.voiced = index, 0
                self.low, self.high = (
                    min(self.recent, default=math.inf),
                    max(self.recent, default=-math.inf),
                )
            else:  # the gap joins the run
                self.low, self.high = min([self.low, *self.tail]), max([self.high, *self.tail])
            self.tail = []
            self.end = index + 1
            self.voiced += 1
            self.low, self.high = min(self.low, energy_db), max(self.high, energy_db)
        elif self.start is not None:
            self.tail.append(energy_db)
            # Closed as soon as a voiced frame after this one could no longer bridge it.
            if not self._bridges(index + 1):
                closed = self.finish()
        self.recent.append(energy_db)
        return closed

    def finish(self) -> tuple[int, int] | None:
        """Close the open run (also at the end of the audio): it, if it is speech."""
        run = None if self.start is None else (self.start, self.end)
        keep = self.kept
        self.start, self.tail = None, []
        return run if keep else None


def voiced(stats: FrameStats, config: VadConfig = DEFAULT_VAD) -> np.ndarray:
    """Which frames are voiced speech: shape ``(n_frames,)``, bool."""
    return np.asarray((stats.energy_db >= config.level_db) & (stats.voicing >= config.voicing))


def _padded(run: tuple[int, int], *, frame: int, pad: int, n_samples: int) -> tuple[int, int]:
    return max(0, run[0] * frame - pad), min(n_samples, run[1] * frame + pad)


def segments_from_stats(
    stats: FrameStats, n_samples: int, *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> list[tuple[int, int]]:
    """Speech segments as ``(start, end)`` sample indices from frame measures.

    Parameters
    ----------
    stats : FrameStats
        From :func:`analyse_blocks` (or :class:`FrameAnalyser`) with ``config``.
    n_samples : int
        Length of the recording in samples (segments are clipped to it).
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings.

    Returns
    -------
    list of (int, int)
        Ordered, non-overlapping for the default settings; end exclusive. Empty: no speech.
    """
    indices = np.flatnonzero(voiced(stats, config))
    if indices.size == 0:
        return []
    # The rules of _Runs, on all frames at once: a voiced frame joins the run before it when
    # the gap is short enough (the same float expression as _Runs._bridges).
    bridged = (indices[1:] - (indices[:-1] + 1)) * config.frame_s <= config.bridge_gap_s
    firsts = np.concatenate([[0], np.flatnonzero(~bridged) + 1])
    lasts = np.concatenate([firsts[1:] - 1, [indices.size - 1]])
    starts = indices[firsts]
    ends = indices[lasts] + 1
    # The energy range of each run's frames, padding included (runs are few: a loop is fine).
    pad, energy = _whole_frames(config.pad_s, config), stats.energy_db
    spread = np.array(
        [
            np.ptp(energy[max(0, a - pad) : b + pad])
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
    )
    min_voiced = _whole_frames(config.min_voiced_s, config)
    kept = (lasts - firsts + 1 >= min_voiced) & (spread >= config.min_range_db)
    frame, pad_samples = frame_length(config, sample_rate), int(config.pad_s * sample_rate)
    return [
        _padded((a, b), frame=frame, pad=pad_samples, n_samples=n_samples)
        for a, b in zip(starts[kept].tolist(), ends[kept].tolist(), strict=True)
    ]


def speech_segments(
    samples: np.ndarray, *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> list[tuple[int, int]]:
    """Speech segments as ``(start, end)`` sample indices of mono ``samples``, shape ``(n,)``."""
    stats = frame_stats(samples, sample_rate=sample_rate, config=config)
    return segments_from_stats(stats, samples.shape[0], sample_rate=sample_rate, config=config)


def speech_seconds(segments: Iterable[tuple[int, int]], *, sample_rate: int) -> float:
    """Total length of ``segments`` in seconds: the ``speech_s`` of every answer."""
    return sum(end - start for start, end in segments) / sample_rate


class SegmentEvent(NamedTuple):
    """A segment boundary found by :class:`StreamingVad`."""

    event: str  # "start" or "end"
    sample: int  # the boundary, in samples from the start of the stream (padded as offline)


class StreamingVad:
    """The detector of :func:`speech_segments`, judging each frame as it arrives.

    Frames are measured as the audio comes (:class:`FrameAnalyser`) and joined into runs by
    the same rules, so the segments are the ones the whole recording gives. A segment's start
    is announced once its run is speech (``min_voiced_s`` of voiced frames spanning
    ``min_range_db``), its end once a gap too long to bridge has passed. Feed mono blocks of
    any size with :meth:`push`, then call :meth:`finish`.

    Parameters
    ----------
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings, as for the timeline.
    """

    def __init__(self, sample_rate: int, config: VadConfig = DEFAULT_VAD) -> None:
        self.config = config
        self.analyser = FrameAnalyser(sample_rate, config)
        self.frame = self.analyser.frame
        self.pad = int(config.pad_s * sample_rate)
        self._runs = _Runs(config)
        self._started = False  # whether the open run's start has been announced

    @property
    def received(self) -> int:
        """Samples pushed so far."""
        return self.analyser.received

    @property
    def in_speech(self) -> bool:
        """Whether a segment has started and not yet ended."""
        return self._started

    def push(self, samples: np.ndarray) -> list[SegmentEvent]:
        """Judge the frames completed by ``samples`` (shape ``(m,)``): new boundaries."""
        return self._judge(self.analyser.push(samples))

    def finish(self) -> list[SegmentEvent]:
        """End of the stream: the last frames, then the open segment, if any, ends."""
        events = self._judge(self.analyser.finish())
        return events + self._closed(self._runs.finish())

    def _judge(self, stats: FrameStats) -> list[SegmentEvent]:
        first = self.analyser.frames - stats.energy_db.shape[0]
        events: list[SegmentEvent] = []
        flags, energies = voiced(stats, self.config).tolist(), stats.energy_db.tolist()
        for index, is_voiced, energy in zip(
            range(first, self.analyser.frames), flags, energies, strict=True
        ):
            events.extend(self._closed(self._runs.push(index, energy, is_voiced)))
            if self._runs.kept and not self._started:
                assert self._runs.start is not None
                events.append(self._start(self._runs.start))
        return events

    def _start(self, frame_index: int) -> SegmentEvent:
        self._started = True
        return SegmentEvent("start", max(0, frame_index * self.frame - self.pad))

    def _closed(self, run: tuple[int, int] | None) -> list[SegmentEvent]:
        if run is None:
            return []
        # A run can become speech only as it closes (its level moving in its last frames).
        events = [] if self._started else [self._start(run[0])]
        self._started = False
        _, end = _padded(run, frame=self.frame, pad=self.pad, n_samples=self.received)
        return [*events, SegmentEvent("end", end)]
