from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.model import load_model
from service.timeline import speech_segments, timeline
from tests.helpers import encode, tone

RATE = 16_000


def _recording() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Speech-like bursts at known times between stretches of faint noise."""
    rng = np.random.default_rng(0)
    y = (0.001 * rng.standard_normal(20 * RATE)).astype(np.float32)
    spans = [(1.0, 2.5), (4.0, 9.0), (12.0, 12.8)]
    for i, (start, end) in enumerate(spans):
        burst = tone(freq=150.0 + 80 * i, seconds=end - start, seed=i)
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
