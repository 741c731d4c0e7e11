"""The one speech detector: its offline form (the timeline's) and its online form (the
stream's) find the same segments."""

from __future__ import annotations

import numpy as np
import pytest

from service.vad import (
    SegmentEvent,
    StreamingVad,
    _RunningPercentile,
    speech_segments,
)
from tests.helpers import tone

RATE = 16_000


def _recording(seed: int) -> np.ndarray:
    """30 s of noise with bursts: a bridged pair, a blip, loud and quiet ones."""
    rng = np.random.default_rng(seed)
    y = (0.003 * rng.standard_normal(30 * RATE)).astype(np.float32)
    bursts = [(1.2, 3.0), (3.25, 4.0), (6.0, 6.15), (8.0, 13.5), (16.0, 16.6), (20.0, 27.0)]
    for i, (start, end) in enumerate(bursts):
        burst = tone(freq=140 + 40 * i, seconds=end - start, amplitude=0.05 + 0.1 * i, seed=i)
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y


def _online(y: np.ndarray, *, seed: int) -> list[SegmentEvent]:
    """Events of the streaming detector fed ``y`` in blocks of random sizes."""
    vad = StreamingVad(RATE)
    rng = np.random.default_rng(seed)
    events, i = [], 0
    while i < y.size:
        n = int(rng.integers(1, 5000))
        events += vad.push(y[i : i + n])
        i += n
    return events + vad.finish()


def _pairs(events: list[SegmentEvent]) -> list[tuple[int, int]]:
    assert [e.event for e in events] == ["start", "end"] * (len(events) // 2)
    return [(a.sample, b.sample) for a, b in zip(events[0::2], events[1::2], strict=True)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_online_segments_equal_the_offline_ones(seed: int) -> None:
    y = _recording(seed)
    offline = speech_segments(y, sample_rate=RATE)
    assert len(offline) == 4  # the pair bridged, the blip dropped
    # Once the noise floor has been heard, running and recording-wide statistics agree here
    # to the sample; the stream's tests allow a few frames.
    assert _pairs(_online(y, seed=seed)) == offline


def test_a_segment_open_at_the_end_ends_with_the_audio() -> None:
    y = np.concatenate([_recording(0)[: 2 * RATE], tone(seconds=1.5)])
    events = _online(y, seed=0)
    assert events[-1] == SegmentEvent("end", y.size)
    assert _pairs(events) == speech_segments(y, sample_rate=RATE)


def test_nothing_is_speech_before_a_quieter_stretch() -> None:
    # A stream that starts with speech has no floor below it yet (as the timeline finds no
    # speech in a steady tone); the next burst after a pause is found.
    y = np.concatenate([tone(seconds=2.0), _recording(1)[: 3 * RATE], tone(seconds=2.0)])
    starts = [e.sample / RATE for e in _online(y, seed=1) if e.event == "start"]
    assert starts and starts[0] > 2.0


def test_digital_silence_and_steady_noise_have_no_speech() -> None:
    silence = np.zeros(5 * RATE, dtype=np.float32)
    noise = (0.01 * np.random.default_rng(0).standard_normal(5 * RATE)).astype(np.float32)
    for y in (silence, noise):
        assert _online(y, seed=0) == []
        assert speech_segments(y, sample_rate=RATE) == []


def test_the_running_floor_is_numpys_percentile() -> None:
    values = np.random.default_rng(0).normal(-50, 10, 500)
    running = _RunningPercentile(10.0)
    for n, value in enumerate(values.tolist(), 1):
        running.add(value)
        if n in (1, 2, 7, 100, 500):
            assert running.value() == pytest.approx(np.percentile(values[:n], 10), abs=1e-9)
