"""The one speech detector: an energy VAD relative to the recording's noise floor and peak.

A 30 ms frame is speech when its energy is ``above_floor_db`` over the noise floor (the 10th
percentile of frame energies) and no more than ``max_below_peak_db`` under the loudest frame;
nothing is speech when even the loudest frame is below -70 dBFS (digital silence). Runs of
speech frames separated by at most ``bridge_gap_s`` are joined, runs shorter than
``min_segment_s`` (gaps included) are dropped as blips, and each segment is padded by ``pad_s``.

Two forms share those rules (:class:`_Runs` does the bridging and dropping for both):

- offline, for the timeline (:func:`segments_from_energy`): the floor and peak of the whole
  recording, from a first pass that keeps only the frame energies;
- online, for the WebSocket stream (:class:`StreamingVad`): the floor and peak of the frames
  heard so far, so each frame is judged as it arrives. A segment starts once its run is long
  enough to be kept (``min_segment_s``) and ends once a gap too long to bridge has passed, so
  events come about 0.3 s after the fact. Until the stream has had a quieter stretch, its floor
  is its own level and nothing counts as speech, as the timeline finds no speech in a steady
  tone.

The speech gate inside the ``speech-stats-v2`` feature set is part of that feature set's
recorded definition, not this detector: the bundled models' features depend on it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

#: Below this peak level (dBFS) a recording is digital silence: no speech at all.
SILENCE_DB = -70.0
#: The noise floor is this percentile of the frame energies.
FLOOR_PERCENTILE = 10.0


@dataclass(frozen=True)
class VadConfig:
    frame_s: float = 0.03
    # A frame is speech when it is this far above the noise floor (10th percentile of frame
    # energy) and no further than `max_below_peak_db` below the loudest frame.
    above_floor_db: float = 12.0
    max_below_peak_db: float = 45.0
    bridge_gap_s: float = 0.3
    min_segment_s: float = 0.3
    pad_s: float = 0.1


#: The settings the timeline and the stream use.
DEFAULT_VAD = VadConfig()


def frame_length(config: VadConfig, sample_rate: int) -> int:
    """Samples per frame at ``sample_rate`` (at least one)."""
    return max(1, int(config.frame_s * sample_rate))


def energies_db(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean-square energy in dB of each whole frame of ``samples``, shape ``(n // frame,)``."""
    whole = samples.shape[0] // frame
    frames = samples[: whole * frame].reshape(whole, frame).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def frame_energies(blocks: Iterable[np.ndarray], *, frame: int) -> tuple[np.ndarray, int]:
    """Energy of every whole frame of ``frame`` samples across ``blocks``.

    Parameters
    ----------
    blocks : iterable of numpy.ndarray
        Consecutive mono blocks, each of shape ``(m,)``; frames may straddle blocks.
    frame : int
        Frame length in samples.

    Returns
    -------
    energy : numpy.ndarray
        Shape ``(n // frame,)``, float64, mean square in dB (a trailing partial frame is
        left out).
    n : int
        Total number of samples.
    """
    parts: list[np.ndarray] = []
    carry: np.ndarray | None = None
    total = 0
    for block in blocks:
        total += block.shape[0]
        data = block if carry is None else np.concatenate([carry, block])
        whole = data.shape[0] // frame
        if whole:
            parts.append(energies_db(data, frame))
        # A copy, so that the block it came from can be freed.
        carry = data[whole * frame :].copy()
    energy = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
    return energy, total


def threshold_db(floor: float, peak: float, config: VadConfig) -> float:
    """The energy a frame must exceed to be speech, given the noise floor and the peak."""
    return max(floor + config.above_floor_db, peak - config.max_below_peak_db)


class _Runs:
    """Joins speech frames into runs across short gaps and keeps the runs long enough.

    Frames are pushed in increasing order: :meth:`add` for a speech frame, :meth:`expire` for
    a frame that is not (only needed to close runs as early as possible). Both return a run
    that has just closed and is long enough, as ``(start, end)`` frame indices (end exclusive).
    """

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self.start: int | None = None
        self.end = 0

    def _bridges(self, index: int) -> bool:
        """Whether a speech frame at ``index`` would join the open run."""
        return (index - self.end) * self.config.frame_s <= self.config.bridge_gap_s

    @property
    def kept(self) -> bool:
        """Whether the open run is already long enough to be a segment (runs only grow)."""
        if self.start is None:
            return False
        return not (self.end - self.start) * self.config.frame_s < self.config.min_segment_s

    def add(self, index: int) -> tuple[int, int] | None:
        closed = None
        if self.start is not None and not self._bridges(index):
            closed = self.finish()
        if self.start is None:
            self.start = index
        self.end = index + 1
        return closed

    def expire(self, index: int) -> tuple[int, int] | None:
        """Close the open run if a speech frame after ``index`` could no longer bridge it."""
        if self.start is not None and not self._bridges(index + 1):
            return self.finish()
        return None

    def finish(self) -> tuple[int, int] | None:
        """Close the open run (at the end of the audio): it, if long enough."""
        run = None if self.start is None else (self.start, self.end)
        keep = self.kept
        self.start = None
        return run if keep else None


def _padded(run: tuple[int, int], *, frame: int, pad: int, n_samples: int) -> tuple[int, int]:
    return max(0, run[0] * frame - pad), min(n_samples, run[1] * frame + pad)


def segments_from_energy(
    energy: np.ndarray, n_samples: int, *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> list[tuple[int, int]]:
    """Speech regions as ``(start, end)`` sample indices from frame energies.

    Parameters
    ----------
    energy : numpy.ndarray
        Shape ``(n_frames,)``: :func:`frame_energies` with ``config``'s frame length.
    n_samples : int
        Length of the recording in samples (segments are clipped to it).
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings.

    Returns
    -------
    list of (int, int)
        Ordered, non-overlapping for the default settings; end exclusive.
    """
    if energy.shape[0] == 0:
        return []
    floor, peak = np.percentile(energy, FLOOR_PERCENTILE), energy.max()
    if peak < SILENCE_DB:
        return []
    threshold = threshold_db(float(floor), float(peak), config)
    runs = _Runs(config)
    closed = [runs.add(i) for i in np.flatnonzero(energy > threshold).tolist()]
    closed.append(runs.finish())
    frame, pad = frame_length(config, sample_rate), int(config.pad_s * sample_rate)
    return [
        _padded(run, frame=frame, pad=pad, n_samples=n_samples) for run in closed if run is not None
    ]


def speech_segments(
    samples: np.ndarray, *, sample_rate: int, config: VadConfig = DEFAULT_VAD
) -> list[tuple[int, int]]:
    """Speech regions as ``(start, end)`` sample indices, for mono ``samples`` of shape ``(n,)``."""
    energy, n = frame_energies([samples], frame=frame_length(config, sample_rate))
    return segments_from_energy(energy, n, sample_rate=sample_rate, config=config)


class SegmentEvent(NamedTuple):
    """A segment boundary found by :class:`StreamingVad`."""

    event: str  # "start" or "end"
    sample: int  # the boundary, in samples from the start of the stream (padded as offline)


class _RunningPercentile:
    """A percentile of every value seen so far, as :func:`numpy.percentile` (linear) gives it.

    Keeps the values sorted: a stream of the longest allowed length (600 s) is 20,000 frames,
    and an insertion into that is a memmove of microseconds.
    """

    def __init__(self, q: float) -> None:
        self.q = q
        self.values: list[float] = []

    def add(self, value: float) -> None:
        bisect.insort(self.values, value)

    def value(self) -> float:
        position = (len(self.values) - 1) * self.q / 100.0
        lo = int(position)
        hi = min(lo + 1, len(self.values) - 1)
        return self.values[lo] + (self.values[hi] - self.values[lo]) * (position - lo)


class StreamingVad:
    """The detector of :func:`segments_from_energy`, judging each frame as it arrives.

    Each frame is compared with the noise floor and peak of the frames so far (itself
    included) instead of the whole recording's; the runs are bridged and dropped by the same
    rules. Feed mono blocks of any size with :meth:`push`, then call :meth:`finish`.

    Parameters
    ----------
    sample_rate : int
        Rate of the samples, in Hz.
    config : VadConfig
        Detector settings, as for the timeline.
    """

    def __init__(self, sample_rate: int, config: VadConfig = DEFAULT_VAD) -> None:
        self.config = config
        self.frame = frame_length(config, sample_rate)
        self.pad = int(config.pad_s * sample_rate)
        self.received = 0  # samples pushed so far
        self.frames = 0  # whole frames judged so far
        self._carry = np.zeros(0, dtype=np.float32)
        self._floor = _RunningPercentile(FLOOR_PERCENTILE)
        self._peak = -np.inf
        self._runs = _Runs(config)
        self._started = False  # whether the open run's start has been announced

    @property
    def in_speech(self) -> bool:
        """Whether a segment has started and not yet ended."""
        return self._started

    def push(self, samples: np.ndarray) -> list[SegmentEvent]:
        """Judge the whole frames completed by ``samples`` (shape ``(m,)``): new boundaries."""
        self.received += samples.shape[0]
        data = np.concatenate([self._carry, samples]) if self._carry.size else samples
        whole = data.shape[0] // self.frame
        self._carry = data[whole * self.frame :].copy()
        events: list[SegmentEvent] = []
        for energy in energies_db(data, self.frame).tolist():
            events.extend(self._judge(energy))
        return events

    def finish(self) -> list[SegmentEvent]:
        """End of the stream: the open segment, if any, ends with the audio."""
        return self._closed(self._runs.finish())

    def _judge(self, energy: float) -> list[SegmentEvent]:
        index = self.frames
        self.frames += 1
        self._floor.add(energy)
        self._peak = max(self._peak, energy)
        speech = self._peak >= SILENCE_DB and energy > threshold_db(
            self._floor.value(), self._peak, self.config
        )
        if not speech:
            return self._closed(self._runs.expire(index))
        events = self._closed(self._runs.add(index))
        if self._runs.kept and not self._started:
            self._started = True
            assert self._runs.start is not None
            start = max(0, self._runs.start * self.frame - self.pad)
            events.append(SegmentEvent("start", start))
        return events

    def _closed(self, run: tuple[int, int] | None) -> list[SegmentEvent]:
        if run is None:
            return []
        self._started = False
        _, end = _padded(run, frame=self.frame, pad=self.pad, n_samples=self.received)
        return [SegmentEvent("end", end)]
