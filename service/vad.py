"""The one speech detector: loud enough, voiced (periodic at a voice's pitch), and moving.

``/predict``, ``/predict/raw``, each ``/predict/batch`` item, ser-predict and the batch scorer
answer only a clip in which this finds speech; the timeline classifies the segments it finds;
the WebSocket stream announces them and sends emotions only for windows that hold some.

Every 30 ms frame gets two measures (:mod:`service.vad_frames`), taken on the audio brought down
to 4 kHz (the mean of each group of 4 samples at 16 kHz, which is all the band below needs):

- its energy, mean square in dBFS;
- its voicing: the highest normalised autocorrelation at a lag in the pitch range of voices
  (60-500 Hz), on a 60 ms Hann window centred on the frame (three periods of the lowest pitch,
  as in Boersma's pitch tracker; the window's own autocorrelation is divided out, and the peak
  refined by a parabola). The autocorrelation comes from the window's power spectrum kept to
  100-1500 Hz, where a voice's harmonics are strong, and half-whitened (divided by the square
  root of its 300 Hz moving average): pink and brown noise's tilt then no longer looks like
  correlation at the short lags, while speech in white or babble noise keeps its harmonics
  (full whitening lifts the bands that noise fills, and lost speech at 10 dB SNR). One batch
  of FFTs for all the frames of a call, no Python loop per frame; frames under ``level_db``
  are not measured.

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

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from service.vad_frames import (
    FrameAnalyser,
    FrameStats,
    analyse_blocks,
    frame_length,
    frame_stats,
)

__all__ = [
    "DEFAULT_VAD",
    "FrameAnalyser",
    "FrameStats",
    "SegmentEvent",
    "StreamingVad",
    "VadConfig",
    "analyse_blocks",
    "frame_length",
    "frame_stats",
    "segments_from_stats",
    "speech_seconds",
    "speech_segments",
    "voiced",
]


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
    #: Voicing of a voiced frame. Over 20 seeds of bench/vad_check.py's generated noise
    #: (3,440 clips): 99.9% of their frames under 0.48, no clip with two frames at 0.55.
    voicing: float = 0.55
    #: Three frames. 0.15 s refused 0.3% of the corpus clips (short shouted words of
    #: TurEV-DB: two vowels of 60 ms each), 0.09 s refuses 2 of 7,017.
    min_voiced_s: float = 0.09
    min_range_db: float = 3.0
    bridge_gap_s: float = 0.3
    pad_s: float = 0.1


#: The settings of every entry point: /predict, the timeline, the stream, ser-predict.
DEFAULT_VAD = VadConfig()


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
