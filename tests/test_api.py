from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.api.schemas import PredictResponse
from service.contract import EMOTIONS
from service.settings import Settings
from tests.helpers import DEFAULT_METRICS, encode, speech_like


def _post(client: TestClient, data: bytes, name: str = "clip.wav"):
    return client.post("/predict", files={"file": (name, data, "application/octet-stream")})


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate"),
    [
        ("WAV", "PCM_16", 16_000),
        ("FLAC", "PCM_24", 44_100),
        ("OGG", "VORBIS", 22_050),
        ("WAV", "FLOAT", 48_000),
    ],
)
def test_predict_happy_path(client: TestClient, fmt: str, subtype: str, rate: int) -> None:
    response = _post(
        client, encode(speech_like(seconds=1.5, rate=rate), rate=rate, format=fmt, subtype=subtype)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probabilities"]) == set(EMOTIONS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["confidence"] == pytest.approx(body["probabilities"][body["label"]])
    assert body["duration_s"] == pytest.approx(1.5, abs=0.05)
    # A voice-like clip without pauses: speech all through (the padding is cut at the ends).
    assert body["speech_s"] == pytest.approx(body["duration_s"], abs=0.05)
    assert body["model"] == "tiny-0"
    assert {"decode", "vad", "features", "inference", "total"} <= set(body["timing_ms"])
    assert response.headers["x-request-id"]


def test_prediction_equals_the_model_run_in_process(client: TestClient) -> None:
    samples = speech_like(freq=330.0, seconds=1.0)
    body = _post(client, encode(samples, subtype="FLOAT")).json()
    model = client.app.state.model
    expected = model.predict(samples)
    for label, p in expected.probabilities.items():
        assert body["probabilities"][label] == pytest.approx(p, abs=1e-6)


ERRORS = [
    ("not audio", b"hello, world" * 100, 415, "unsupported_format"),
    ("empty file", b"", 422, "empty"),
    ("too short", encode(np.zeros(100, dtype=np.float32)), 422, "too_short"),
    (
        "NaN samples",
        encode(np.full(8000, np.nan, dtype=np.float32), subtype="FLOAT"),
        422,
        "non_finite",
    ),
    ("too long", encode(speech_like(seconds=6.0, rate=8_000), rate=8_000), 413, "audio_too_long"),
    ("digital silence", encode(np.zeros(16_000, dtype=np.float32)), 422, "no_speech"),
]


@pytest.mark.parametrize(("case", "data", "status", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_predict_bad_input_gets_a_clear_4xx(
    any_model_client: TestClient, case: str, data: bytes, status: int, code: str
) -> None:
    response = _post(any_model_client, data)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]


def test_missing_file_field_is_422(client: TestClient) -> None:
    response = client.post("/predict", data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    response = client.post("/predict", content=b"raw bytes", headers={"content-type": "text/plain"})
    assert response.status_code == 422


def test_upload_over_the_size_limit_is_413(client: TestClient) -> None:
    big = encode(speech_like(seconds=4.0, rate=48_000), rate=48_000, subtype="FLOAT")  # ~770 KB
    big = big + b"\0" * (1024 * 1024)  # over the fixture's 1 MB limit
    response = _post(client, big)
    assert response.status_code == 413
    assert response.json()["error"] == "upload_too_large"
    # The service is still fine afterwards.
    assert _post(client, encode(speech_like(seconds=1.0))).status_code == 200


def test_metrics_count_requests_errors_and_latency(client: TestClient) -> None:
    for _ in range(3):
        assert _post(client, encode(speech_like(seconds=1.0))).status_code == 200
    _post(client, b"garbage" * 50)
    body = client.get("/metrics").json()
    assert body["model"]["version"] == "tiny-0"
    assert body["model"]["evaluation"] == DEFAULT_METRICS
    service = body["service"]
    assert service["requests"]["/predict"] == {"200": 3, "415": 1}
    assert service["errors"]["unsupported_format"] == 1
    assert service["latency_ms"]["total"]["count"] == 3
    assert service["latency_ms"]["total"]["p50"] > 0


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_not_ready_before_lifespan(settings: Settings) -> None:
    app = create_app(settings)
    client = TestClient(app, raise_server_exceptions=False)  # no `with`: lifespan not run
    assert client.get("/readyz").status_code == 503
    response = _post(client, encode(speech_like(seconds=1.0)))
    assert response.status_code == 503 and response.json()["error"] == "not_ready"


def test_model_endpoint_describes_the_contract(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert body["labels"] == list(EMOTIONS)
    assert body["feature_set"] == "mfcc40-mean"
    assert body["feature_config"]["n_mfcc"] == 40


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_a_real_bug_is_a_logged_json_500(client: TestClient, monkeypatch, caplog) -> None:
    def broken(features):
        raise RuntimeError("boom")

    monkeypatch.setattr(client.app.state.model, "predict_proba", broken)
    response = _post(client, encode(speech_like(seconds=1.0)))
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "boom" not in response.text
    assert any("unhandled error" in r.message for r in caplog.records)


def test_overload_answers_503_with_retry_after(client: TestClient) -> None:
    limiter = client.app.state.limiter
    held = [limiter.__enter__() for _ in range(client.app.state.settings.max_inflight)]
    try:
        response = _post(client, encode(speech_like(seconds=1.0)))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert client.get("/healthz").status_code == 200
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert _post(client, encode(speech_like(seconds=1.0))).status_code == 200


def test_app_refuses_to_start_with_a_bad_model(tmp_path) -> None:
    from service.model import ModelContractError

    app = create_app(Settings(model_path=tmp_path / "missing.onnx"))
    with pytest.raises(ModelContractError), TestClient(app):
        pass


def test_saturated_worker_sheds_uploads_before_reading_them(client: TestClient) -> None:
    limiter = client.app.state.limiter
    held = [limiter.__enter__() for _ in range(limiter.limit)]
    try:
        response = _post(client, encode(speech_like(seconds=1.0)))
        assert response.status_code == 503 and response.json()["error"] == "overloaded"
        assert response.headers["retry-after"] == "1"
        assert client.get("/metrics").json()["service"]["requests"]["/predict"] == {"503": 1}
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert _post(client, encode(speech_like(seconds=1.0))).status_code == 200


def test_plain_predict_has_no_timeline_key(client: TestClient) -> None:
    assert "timeline" not in _post(client, encode(speech_like(seconds=1.0))).json()


@pytest.mark.parametrize("route", ["/predict", "/predict/raw", "/predict?timeline=true"])
def test_answers_match_the_documented_model_exactly(client: TestClient, route: str) -> None:
    # The routes return ready JSON, bypassing FastAPI's response-model validation: the body
    # must still be exactly what PredictResponse documents (no missing or extra keys).
    data = encode(speech_like(seconds=1.5))
    if route == "/predict/raw":
        response = client.post(route, content=data, headers={"content-type": "audio/wav"})
    else:
        response = client.post(route, files={"file": ("a.wav", data, "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    parsed = PredictResponse.model_validate(body, strict=True)
    assert parsed.model_dump(exclude_none=True) == body
    assert ("timeline" in body) == route.endswith("timeline=true")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["server-timing"].startswith("decode;dur=")


def _post_raw(client: TestClient, data: bytes, media: str = "audio/wav"):
    return client.post("/predict/raw", content=data, headers={"content-type": media})


def test_raw_body_route_answers_like_the_multipart_one(client: TestClient) -> None:
    data = encode(speech_like(freq=260.0, seconds=1.2, rate=44_100), rate=44_100, format="FLAC")
    multipart, raw = _post(client, data).json(), _post_raw(client, data, "audio/flac").json()
    assert raw["label"] == multipart["label"]
    for label, p in multipart["probabilities"].items():
        assert raw["probabilities"][label] == pytest.approx(p, abs=1e-9)
    assert raw["duration_s"] == multipart["duration_s"] and raw["model"] == "tiny-0"
    # The media type is a hint for proxies and docs; the bytes decide the format.
    assert _post_raw(client, data, "application/octet-stream").json()["label"] == raw["label"]


@pytest.mark.parametrize(("case", "data", "status", "code"), ERRORS, ids=[e[0] for e in ERRORS])
def test_raw_body_bad_input_gets_the_same_4xx(
    any_model_client: TestClient, case: str, data: bytes, status: int, code: str
) -> None:
    response = _post_raw(any_model_client, data)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


def test_raw_body_over_the_size_limit_is_413(client: TestClient) -> None:
    response = _post_raw(client, b"\0" * (1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.json()["error"] == "upload_too_large"
    assert _post_raw(client, encode(speech_like(seconds=1.0))).status_code == 200
    counted = client.get("/metrics").json()["service"]["requests"]
    assert any(key.startswith("/predict/raw") for key in counted), counted


def test_the_bundled_models_answer_in_the_documented_shape(any_model_client: TestClient) -> None:
    response = _post(any_model_client, encode(speech_like(seconds=1.5)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert PredictResponse.model_validate(body, strict=True).model_dump(exclude_none=True) == body
    assert body["model"] == any_model_client.app.state.model.version


def test_batch_items_are_answered_like_single_requests(client: TestClient) -> None:
    good = encode(speech_like(freq=300.0, seconds=1.0), subtype="FLOAT")
    cases = [("good.wav", good), *((case, data) for case, data, _, _ in ERRORS)]
    response = client.post("/predict/batch", files=[("files", case) for case in cases])
    assert response.status_code == 200
    for (name, data), item in zip(cases, response.json()["results"], strict=True):
        single = _post(client, data)
        assert item["filename"] == name and item["status"] == single.status_code
        expected = single.json()
        if single.status_code == 200:
            keys = ("label", "probabilities", "duration_s", "speech_s", "model")
            assert {k: item[k] for k in keys} == {k: expected[k] for k in keys}
        else:
            assert (item["error"], item["detail"]) == (expected["error"], expected["detail"])


def test_every_route_is_counted_under_its_own_name(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/v1/model")
    client.get("/static/app.css")
    client.get("/")
    client.get("/no/such/route")
    with client.websocket_connect("/v1/stream") as ws:
        ws.send_text('{"sample_rate": 16000}')
        ws.send_text('{"type": "end"}')
        ws.receive_json()
    requests = client.get("/metrics").json()["service"]["requests"]
    assert requests == {
        "/healthz": {"200": 1},
        "/v1/model": {"200": 1},
        "/static": {"200": 1},
        "/": {"200": 1},
        "other": {"404": 1},
        "/v1/stream": {"1000": 1},
    }
