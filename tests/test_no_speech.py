"""No speech, no emotion: every entry point refuses audio without speech with 422 ``no_speech``
(the one error mapping), and every answer says how much speech it found (``speech_s``)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.predict_cli import main as ser_predict
from tests.golden import golden_clips
from tests.helpers import coloured_noise, encode, hum, speech_like

RATE = 16_000

NON_SPEECH = {
    "silence": np.zeros(RATE, dtype=np.float32),
    "dither": (np.random.default_rng(0).integers(-1, 2, 2 * RATE) / 32768).astype(np.float32),
    "white noise": coloured_noise(seconds=1.5, level_db=-25.0, seed=1),
    "pink noise": coloured_noise(exponent=1.0, seconds=2.0, level_db=-25.0, seed=2),
    "hum": hum(seconds=2.0, level_db=-25.0),
}
KINDS = sorted(NON_SPEECH)


def _detail(samples: np.ndarray) -> str:
    return f"No speech found in {samples.size / RATE:.2f} s of audio."


@pytest.mark.parametrize("kind", KINDS)
def test_predict_refuses_audio_without_speech(any_model_client: TestClient, kind: str) -> None:
    samples = NON_SPEECH[kind]
    data = encode(samples, subtype="FLOAT")
    multipart = any_model_client.post("/predict", files={"file": ("x.wav", data)})
    raw = any_model_client.post("/predict/raw", content=data, headers={"content-type": "audio/wav"})
    for response in (multipart, raw):
        assert response.status_code == 422, response.text
        assert response.json() == {"error": "no_speech", "detail": _detail(samples)}


def test_no_speech_is_counted_as_its_own_error_kind(client: TestClient) -> None:
    for kind in KINDS:
        data = encode(NON_SPEECH[kind], subtype="FLOAT")
        assert client.post("/predict", files={"file": ("x.wav", data)}).status_code == 422
    service = client.get("/metrics").json()["service"]
    assert service["errors"] == {"no_speech": len(KINDS)}
    assert service["requests"]["/predict"] == {"422": len(KINDS)}
    prometheus = client.get("/metrics", headers={"Accept": "text/plain"}).text
    assert f'ser_errors_total{{kind="no_speech"}} {float(len(KINDS))}' in prometheus


def test_batch_items_without_speech_are_no_speech(client: TestClient) -> None:
    files = [("files", ("speech.wav", encode(speech_like(seconds=1.0))))]
    files += [
        ("files", (f"{kind}.wav", encode(NON_SPEECH[kind], subtype="FLOAT"))) for kind in KINDS
    ]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200
    first, *others = response.json()["results"]
    assert first["status"] == 200 and first["speech_s"] == pytest.approx(1.0, abs=0.05)
    for kind, item in zip(KINDS, others, strict=True):
        assert item["filename"] == f"{kind}.wav"
        assert (item["status"], item["error"]) == (422, "no_speech")
        assert item["detail"] == _detail(NON_SPEECH[kind]) and item["label"] is None


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_ser_predict_rows_without_speech_are_no_speech(tiny_model, tmp_path, fmt) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "speech.wav").write_bytes(encode(speech_like(seconds=1.2)))
    for kind in KINDS:
        (folder / f"{kind}.wav").write_bytes(encode(NON_SPEECH[kind], subtype="FLOAT"))
    out = tmp_path / f"out.{fmt}"
    args = [str(folder), "--model", str(tiny_model), "--format", fmt, "--output", str(out)]
    assert ser_predict([*args, "--workers", "1", "--no-progress"]) == 0
    lines = out.read_text().splitlines()
    if fmt == "jsonl":
        records = [json.loads(line) for line in lines]
    else:
        records = list(csv.DictReader(lines))
    by_name = {r["path"].rsplit("/", 1)[1]: r for r in records}
    assert float(by_name["speech.wav"]["speech_s"]) == pytest.approx(1.2, abs=0.05)
    for kind in KINDS:
        row = by_name[f"{kind}.wav"]
        assert row["error"] == "no_speech" and row["detail"] == _detail(NON_SPEECH[kind])
        assert not row.get("label")


@pytest.mark.parametrize("seconds", [0.6, 1.5, 3.0])
def test_a_tightly_cut_utterance_is_answered_with_its_length_of_speech(
    client: TestClient, seconds: float
) -> None:
    response = client.post(
        "/predict", files={"file": ("u.wav", encode(speech_like(seconds=seconds, seed=2)))}
    )
    assert response.status_code == 200, response.text
    assert response.json()["speech_s"] == pytest.approx(seconds, abs=0.05)


def _speech_in_silence() -> np.ndarray:
    """3 s: 1 s of silence, 1 s of voice-like sound, 1 s of silence."""
    y = np.zeros(3 * RATE, dtype=np.float32)
    y[RATE : 2 * RATE] = speech_like(seconds=1.0, freq=190.0, seed=3)
    return y


def test_speech_s_counts_the_speech_not_the_silence(client: TestClient) -> None:
    y = _speech_in_silence()
    body = client.post("/predict", files={"file": ("s.wav", encode(y, subtype="FLOAT"))}).json()
    assert body["duration_s"] == pytest.approx(3.0)
    # The second of speech, with the detector's 0.1 s of padding on each side.
    assert body["speech_s"] == pytest.approx(1.2, abs=0.05)
    # The detector decides whether to answer; the answer is the model's on the whole clip.
    model = client.app.state.model
    for label, p in model.predict(y).probabilities.items():
        assert body["probabilities"][label] == pytest.approx(p, abs=1e-6)


def test_the_timeline_agrees_with_speech_s(client: TestClient) -> None:
    data = encode(_speech_in_silence(), subtype="FLOAT")
    plain = client.post("/predict", files={"file": ("s.wav", data)}).json()
    with_timeline = client.post("/predict?timeline=true", files={"file": ("s.wav", data)}).json()
    summary = with_timeline["timeline"]["summary"]
    assert with_timeline["speech_s"] == summary["speech_s"] == plain["speech_s"]
    (segment,) = with_timeline["timeline"]["segments"]
    assert segment["end"] - segment["start"] == pytest.approx(summary["speech_s"], abs=1e-3)


@pytest.mark.parametrize("kind", KINDS)
def test_a_timeline_without_speech_is_no_speech_like_plain_predict(
    client: TestClient, kind: str
) -> None:
    data = encode(NON_SPEECH[kind], subtype="FLOAT")
    plain = client.post("/predict", files={"file": ("x.wav", data)})
    timeline = client.post("/predict?timeline=true", files={"file": ("x.wav", data)})
    assert timeline.status_code == plain.status_code == 422
    assert timeline.json() == plain.json()


@pytest.mark.parametrize("name", ["vowel", "call"])
def test_the_golden_speech_clips_are_answered_by_the_bundled_models(
    any_model_client: TestClient, name: str
) -> None:
    clip = golden_clips()[name]
    response = any_model_client.post(
        "/predict", files={"file": ("g.wav", encode(clip, subtype="FLOAT"))}
    )
    assert response.status_code == 200, response.text
    assert 0.5 < response.json()["speech_s"] <= response.json()["duration_s"]
