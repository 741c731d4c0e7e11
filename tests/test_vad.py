"""The one speech detector: what it takes for speech and what it refuses, and its three forms
(a whole recording, blocks, a live stream) finding the same segments."""

from __future__ import annotations

import numpy as np
import pytest

from service.vad import (
    DEFAULT_VAD,
    SegmentEvent,
    StreamingVad,
    analyse_blocks,
    frame_stats,
    speech_seconds,
    speech_segments,
    voiced,
)
from tests.helpers import coloured_noise, hum, speech_like, tone

RATE = 16_000


def _recording(seed: int) -> np.ndarray:
    """30 s of faint noise with voice-like bursts: a bridged pair, a blip, loud and quiet ones."""
    y = coloured_noise(seconds=30.0, level_db=-55.0, seed=seed)
    bursts = [(1.2, 3.0), (3.25, 4.0), (6.0, 6.06), (8.0, 13.5), (16.0, 16.6), (20.0, 27.0)]
    for i, (start, end) in enumerate(bursts):
        burst = speech_like(
            freq=140 + 40 * i, seconds=end - start, amplitude=0.05 + 0.1 * i, seed=i + seed
        )
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y


def _online(y: np.ndarray, *, seed: int, rate: int = RATE) -> list[SegmentEvent]:
    """Events of the streaming detector fed ``y`` in blocks of random sizes."""
    vad = StreamingVad(rate)
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
    # Every rule is absolute: the stream finds the same segments, to the sample.
    assert _pairs(_online(y, seed=seed)) == offline


@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_frame_measures_do_not_depend_on_blocks(rate: int) -> None:
    # 16 and 48 kHz are brought to 4 kHz by means of sample groups, 44.1 kHz by soxr.
    y = speech_like(seconds=2.3, rate=rate) + coloured_noise(seconds=2.3, rate=rate, seed=3)
    whole = frame_stats(y, sample_rate=rate, config=DEFAULT_VAD)
    ragged = np.array_split(y, [1, 479, 481, rate, rate + 1, 2 * rate])
    blocks, n = analyse_blocks(ragged, sample_rate=rate, config=DEFAULT_VAD)
    assert n == y.size and whole.energy_db.shape == (y.size // int(0.03 * rate),)
    np.testing.assert_array_equal(blocks.energy_db, whole.energy_db)
    np.testing.assert_array_equal(blocks.voicing, whole.voicing)


def test_a_segment_open_at_the_end_ends_with_the_audio() -> None:
    y = np.concatenate([_recording(0)[: 2 * RATE], speech_like(seconds=1.5)])
    events = _online(y, seed=0)
    assert events[-1] == SegmentEvent("end", y.size)
    assert _pairs(events) == speech_segments(y, sample_rate=RATE)


def test_speech_at_the_very_start_is_found() -> None:
    # No noise floor to learn first: a stream (or a clip) that starts talking is speech at once.
    y = np.concatenate([speech_like(seconds=1.0), np.zeros(RATE, dtype=np.float32)])
    events = _online(y, seed=1)
    assert events[0] == SegmentEvent("start", 0)
    assert events[1].event == "end" and events[1].sample == pytest.approx(1.1 * RATE, abs=500)


def test_a_tightly_cut_utterance_is_speech_from_end_to_end() -> None:
    y = speech_like(seconds=1.3, freq=210.0, seed=4)
    segments = speech_segments(y, sample_rate=RATE)
    assert segments == [(0, y.size)]
    assert speech_seconds(segments, sample_rate=RATE) == pytest.approx(1.3)


def test_one_second_of_speech_in_three_of_silence() -> None:
    y = np.zeros(3 * RATE, dtype=np.float32)
    y[RATE : 2 * RATE] = speech_like(seconds=1.0)
    segments = speech_segments(y, sample_rate=RATE)
    assert len(segments) == 1
    start, end = (s / RATE for s in segments[0])
    # The speech, and the detector's 0.1 s of padding on each side.
    assert start == pytest.approx(0.9, abs=0.03) and end == pytest.approx(2.1, abs=0.03)
    assert speech_seconds(segments, sample_rate=RATE) == pytest.approx(1.2, abs=0.05)


@pytest.mark.parametrize("snr_db", [10.0, 5.0])
def test_speech_in_white_noise_is_found(snr_db: float) -> None:
    voice = speech_like(seconds=2.0, seed=5)
    noise = coloured_noise(seconds=2.0, seed=6)
    noise *= np.sqrt(np.mean(voice**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    segments = speech_segments(voice + noise, sample_rate=RATE)
    assert speech_seconds(segments, sample_rate=RATE) > 1.5


NON_SPEECH = {
    "digital silence": np.zeros(3 * RATE, dtype=np.float32),
    "dither": (np.random.default_rng(0).integers(-1, 2, 3 * RATE) / 32768).astype(np.float32),
    "hiss at -80 dBFS": coloured_noise(seconds=3.0, level_db=-80.0),
    "white noise": coloured_noise(seconds=3.0, level_db=-20.0, seed=1),
    "pink noise": coloured_noise(exponent=1.0, seconds=3.0, level_db=-20.0, seed=2),
    "brown noise": coloured_noise(exponent=2.0, seconds=3.0, level_db=-20.0, seed=3),
    "50 Hz hum": hum(seconds=3.0),
    "60 Hz hum": hum(freq=60.0, seconds=3.0),
    "a steady tone": tone(seconds=3.0),
}


@pytest.mark.parametrize("kind", sorted(NON_SPEECH))
def test_non_speech_is_refused(kind: str) -> None:
    y = NON_SPEECH[kind]
    assert speech_segments(y, sample_rate=RATE) == []
    assert _online(y, seed=0) == []


def test_voicing_tells_a_voice_from_noise() -> None:
    voice = frame_stats(
        speech_like(seconds=2.0, amplitude=0.1), sample_rate=RATE, config=DEFAULT_VAD
    )
    assert np.median(voice.voicing) > 0.8 and voiced(voice).mean() > 0.9
    for exponent in (0.0, 1.0, 2.0):
        noise = coloured_noise(exponent=exponent, seconds=2.0)
        noise = frame_stats(noise, sample_rate=RATE, config=DEFAULT_VAD)
        assert np.percentile(noise.voicing, 90) < 0.45, exponent


def test_a_steady_tone_becomes_speech_once_its_level_moves() -> None:
    # What a hum lacks: the level of a voice moves (syllables, onset, release).
    steady = tone(seconds=2.0)
    assert speech_segments(steady, sample_rate=RATE) == []
    moving = steady * np.repeat([1.0, 0.5], RATE).astype(np.float32)  # 6 dB down half-way
    assert speech_segments(moving, sample_rate=RATE) == [(0, moving.size)]


def test_too_little_voicing_is_dropped() -> None:
    frames = round(DEFAULT_VAD.min_voiced_s / DEFAULT_VAD.frame_s)
    frame = int(DEFAULT_VAD.frame_s * RATE)
    start = 30 * frame  # on a frame boundary: the burst covers exactly n frames
    for n, kept in ((frames - 1, False), (frames + 1, True)):
        y = np.zeros(2 * RATE, dtype=np.float32)
        y[start : start + n * frame] = speech_like(seconds=n * DEFAULT_VAD.frame_s)
        assert bool(speech_segments(y, sample_rate=RATE)) is kept, n
