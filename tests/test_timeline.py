from __future__ import annotations

import gc
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from fastapi.testclient import TestClient

from service.api import create_app
from service.audio import AudioTooLongError, decode_audio
from service.errors import NoSpeechError
from service.inference import ClipResult
from service.model import load_model
from service.settings import Settings
from service.timeline import (
    classify_span,
    classify_spans,
    classify_with_timeline,
    span_windows,
    timeline,
)
from service.vad import DEFAULT_VAD, analyse_blocks, segments_from_stats, speech_segments
from tests.helpers import coloured_noise, encode, speech_like, tone

RATE = 16_000


def _recording() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Speech-like bursts at known times between stretches of faint noise."""
    rng = np.random.default_rng(0)
    y = (0.001 * rng.standard_normal(20 * RATE)).astype(np.float32)
    spans = [(1.0, 2.5), (4.0, 9.0), (12.0, 12.8)]
    for i, (start, end) in enumerate(spans):
        burst = speech_like(freq=150.0 + 80 * i, seconds=end - start, seed=i)
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y, spans


def test_vad_finds_the_speech_spans() -> None:
    y, spans = _recording()
    found = [(s / RATE, e / RATE) for s, e in speech_segments(y, sample_rate=RATE)]
    assert len(found) == len(spans)
    for (fs, fe), (ts, te) in zip(found, spans, strict=True):
        assert fs == pytest.approx(ts, abs=0.15) and fe == pytest.approx(te, abs=0.15)


def test_vad_on_silence_finds_nothing() -> None:
    assert speech_segments(np.zeros(5 * RATE, dtype=np.float32), sample_rate=RATE) == []


def test_timeline_classifies_each_segment_and_summarises(tiny_model) -> None:
    model = load_model(tiny_model)
    y, spans = _recording()
    result = timeline(model, y)
    assert [round(s["start"]) for s in result["segments"]] == [round(s) for s, _ in spans]
    for segment in result["segments"]:
        assert segment["label"] in model.labels
        assert sum(segment["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    summary = result["summary"]
    assert summary["segments"] == 3
    assert summary["speech_s"] == pytest.approx(sum(e - s for s, e in spans) + 0.6, abs=0.5)
    assert sum(summary["distribution"].values()) == pytest.approx(1.0, abs=1e-5)
    assert summary["dominant"] == max(summary["distribution"], key=summary["distribution"].get)


def test_predict_with_timeline_accepts_long_audio(client: TestClient) -> None:
    y, spans = _recording()  # 20 s: over the fixture's 5 s /predict limit
    data = encode(y, subtype="PCM_16")  # 640 KB: under the 1 MB body limit
    plain = client.post("/predict", files={"file": ("long.wav", data)})
    assert plain.status_code == 413
    response = client.post("/predict?timeline=true", files={"file": ("long.wav", data)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["timeline"]["segments"]) == len(spans)
    assert "timeline" in body["timing_ms"]


# Block-wise timelines: the same answer as the whole array, with memory that does not grow.


def _multi_segment() -> np.ndarray:
    """Bursts whose lengths exercise window merging (a last window under 0.5 s) and splitting."""
    rng = np.random.default_rng(3)
    y = (0.002 * rng.standard_normal(40 * RATE)).astype(np.float32)
    for start, length in [(0.5, 7.3), (10.0, 3.2), (15.0, 0.4), (20.0, 12.9), (35.0, 3.05)]:
        burst = speech_like(freq=120.0 + 20 * start, seconds=length, seed=int(start))
        y[int(start * RATE) : int(start * RATE) + burst.size] += burst
    return y


def test_windows_merge_a_short_last_piece_into_the_one_before() -> None:
    assert span_windows(0, 48_000 + 3_200, window=48_000, min_window=8_000) == [(0, 51_200)]
    assert span_windows(100, 100 + 99_200, window=48_000, min_window=8_000) == [
        (100, 48_100),
        (48_100, 99_300),
    ]
    assert span_windows(0, 112_000, window=48_000, min_window=8_000)[-1] == (96_000, 112_000)


def test_a_segment_just_over_one_window_is_one_window(tiny_model) -> None:
    # This raised IndexError (a 500 from the API) before the last-window merge was fixed.
    model = load_model(tiny_model)
    y = tone(seconds=3.2)
    expected = model.predict_proba(model.feature_set.extract(y)[None])[0]
    got = classify_span(model, y, window=3 * RATE, min_window=RATE // 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_energies_and_windows_do_not_depend_on_block_boundaries(tiny_model) -> None:
    model = load_model(tiny_model)
    y = _multi_segment()
    ragged = np.array_split(y, [1, 479, 481, 16_000, 16_001, 200_000, 200_333])
    whole, n = analyse_blocks([y], sample_rate=RATE, config=DEFAULT_VAD)
    stats, n_ragged = analyse_blocks(ragged, sample_rate=RATE, config=DEFAULT_VAD)
    np.testing.assert_array_equal(stats.energy_db, whole.energy_db)
    np.testing.assert_array_equal(stats.voicing, whole.voicing)
    assert n == n_ragged == y.size
    spans = segments_from_stats(stats, n, sample_rate=RATE)
    assert len(spans) == 5
    options = {"window": 3 * RATE, "min_window": RATE // 2}
    one = classify_spans(model, [y], spans, **options)
    many = classify_spans(model, ragged, spans, **options)
    np.testing.assert_array_equal(np.stack(many), np.stack(one))


@pytest.mark.parametrize(
    ("rate", "channels", "fmt", "block_s"),
    [(48_000, 2, "FLAC", 0.37), (44_100, 1, "WAV", 1.0), (16_000, 2, "WAV", 0.7)],
)
def test_block_timeline_equals_the_whole_array_timeline(
    tiny_model, rate: int, channels: int, fmt: str, block_s: float
) -> None:
    model = load_model(tiny_model)
    y = soxr.resample(_multi_segment(), RATE, rate).astype(np.float32)
    if channels == 2:
        y = np.stack([y, 0.7 * y], axis=1)
    data = encode(y, rate=rate, format=fmt)
    reference = timeline(model, decode_audio(data).samples)
    result = classify_with_timeline(model, data, block_s=block_s)
    got = result.timeline
    assert got is not None
    assert [(s["start"], s["end"]) for s in got["segments"]] == [
        (s["start"], s["end"]) for s in reference["segments"]
    ]
    assert len(got["segments"]) == 5
    for ours, theirs in zip(got["segments"], reference["segments"], strict=True):
        assert ours["label"] == theirs["label"]
        # Measured difference: 0.0 (the soxr stream reproduces the one-shot output).
        for label in model.labels:
            assert ours["probabilities"][label] == pytest.approx(
                theirs["probabilities"][label], abs=1e-6
            )
    assert got["summary"]["segments"] == reference["summary"]["segments"]
    assert got["summary"]["speech_s"] == reference["summary"]["speech_s"]
    assert got["summary"]["duration_s"] == reference["summary"]["duration_s"]
    # The overall answer is the speech-weighted distribution of the summary.
    assert result.prediction.label == got["summary"]["dominant"]
    for label, p in got["summary"]["distribution"].items():
        assert result.prediction.probabilities[label] == pytest.approx(p, abs=1e-6)
    assert result.duration_s == pytest.approx(40.0, abs=1e-3)
    assert (result.source_rate, result.source_channels) == (rate, channels)
    assert set(result.timings_s) == {"decode", "features", "inference", "timeline", "total"}


def test_a_recording_without_speech_is_no_speech_as_for_predict(tiny_model) -> None:
    model = load_model(tiny_model)
    # Steady noise with a hum: loud, but never voiced speech.
    y = coloured_noise(exponent=1.0, seconds=7.0, level_db=-30.0) + 0.5 * tone(
        freq=60.0, seconds=7.0, noise=0.0
    )
    with pytest.raises(NoSpeechError) as caught:
        classify_with_timeline(model, encode(y, subtype="FLOAT"))
    assert caught.value.detail == "No speech found in 7.00 s of audio."
    body = timeline(model, y)  # the timeline alone: no segment, no dominant emotion
    assert body["segments"] == [] and body["summary"]["speech_s"] == 0.0
    assert body["summary"]["dominant"] is None


def test_a_file_object_is_read_from_where_it_stands_on_each_pass(tiny_model) -> None:
    model = load_model(tiny_model)
    data = encode(_recording()[0])
    handle = io.BytesIO(b"junk" + data)
    handle.seek(4)
    from_file = classify_with_timeline(model, handle).timeline
    assert from_file == classify_with_timeline(model, data).timeline


def test_timeline_duration_limit(tiny_model) -> None:
    model = load_model(tiny_model)
    with pytest.raises(AudioTooLongError):
        classify_with_timeline(model, encode(_recording()[0]), max_duration_s=10.0)


def test_predict_with_timeline_over_the_limit_is_413(tiny_model) -> None:
    settings = Settings(
        model_path=tiny_model, max_upload_mb=1.0, max_audio_seconds=5.0, max_timeline_seconds=10.0
    )
    data = encode(_recording()[0], subtype="PCM_16")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/predict?timeline=true", files={"file": ("long.wav", data)})
    assert response.status_code == 413
    assert response.json()["error"] == "audio_too_long"


def _long_recording(path: Path, *, seconds: int, rate: int) -> None:
    """Speech-like bursts (4 s in every 10 s) in faint noise, stereo, written 10 s at a time."""
    rng = np.random.default_rng(1)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as out:
        for k in range(seconds // 10):
            y = (0.002 * rng.standard_normal(10 * rate)).astype(np.float32)
            burst = speech_like(freq=140.0 + 7 * k, seconds=4.0, rate=rate, seed=k)
            y[2 * rate : 2 * rate + burst.size] += burst
            out.write(np.stack([y, 0.8 * y], axis=1))


def _peak_traced(call: Callable[[], object]) -> int:
    """Peak bytes allocated (as tracemalloc sees them, numpy included) while ``call`` runs."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_recording(tiny_model, tmp_path) -> None:
    model = load_model(tiny_model)
    path = tmp_path / "five_minutes.wav"
    _long_recording(path, seconds=300, rate=48_000)
    whole = _peak_traced(lambda: decode_audio(path))
    results: list[ClipResult] = []
    blocks = _peak_traced(lambda: results.append(classify_with_timeline(model, path)))
    timeline_ = results[0].timeline
    assert timeline_ is not None and timeline_["summary"]["segments"] == 30
    # Whole decoding holds the 48 kHz stereo read (115 MB), its mono mix and the resampled
    # copy; the blocks hold a second of audio and one window at a time.
    assert whole > 150e6
    # Measured: 230 MB whole, 6.7 MB block-wise (mostly one window's feature extraction).
    assert blocks < whole / 10, (blocks, whole)
