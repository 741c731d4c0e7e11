"""Auth, Prometheus metrics, Server-Timing, batch prediction, logs and streaming body limits."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.api.auth import hash_key
from service.logs import JsonFormatter
from service.settings import Settings
from tests.helpers import encode, speech_like

CLIP = encode(speech_like(seconds=1.0))


@pytest.fixture
def secured(settings: Settings, tmp_path) -> TestClient:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# ops keys\n{hash_key('from-file-key')}\n")
    secure = settings.model_copy(
        update={"api_keys": "env-key-1, env-key-2", "api_keys_file": keys_file}
    )
    with TestClient(create_app(secure), raise_server_exceptions=False) as client:
        yield client


def _predict(client: TestClient, headers: dict[str, str] | None = None):
    return client.post("/predict", files={"file": ("a.wav", CLIP)}, headers=headers or {})


def test_auth_is_off_by_default(client: TestClient) -> None:
    assert _predict(client).status_code == 200


def test_auth_accepts_bearer_header_and_hashed_file_keys(secured: TestClient) -> None:
    assert _predict(secured, {"Authorization": "Bearer env-key-2"}).status_code == 200
    assert _predict(secured, {"X-API-Key": "env-key-1"}).status_code == 200
    assert _predict(secured, {"X-API-Key": "from-file-key"}).status_code == 200


def test_auth_rejects_missing_and_wrong_keys(secured: TestClient) -> None:
    missing = _predict(secured)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = _predict(secured, {"X-API-Key": "nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"
    for route in ("/metrics", "/v1/model"):
        assert secured.get(route).status_code == 401
    # Probes stay open for the orchestrator.
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").status_code == 200


def test_bad_keys_file_is_refused(settings: Settings, tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("plain-text-key\n")
    with pytest.raises(ValueError, match="SHA-256"):
        create_app(settings.model_copy(update={"api_keys_file": bad}))


def test_metrics_json_by_default_and_prometheus_on_request(client: TestClient) -> None:
    _predict(client)
    assert client.get("/metrics").headers["content-type"].startswith("application/json")
    text = client.get("/metrics", headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    body = text.text
    assert 'ser_requests_total{route="/predict",status="200"} 1.0' in body
    assert 'ser_stage_seconds_count{stage="features"} 1.0' in body
    assert "ser_inflight 0.0" in body
    assert 'ser_model_info{feature_set="mfcc40-mean"' in body
    om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")


def test_server_timing_header_has_the_stages(client: TestClient) -> None:
    header = _predict(client).headers["server-timing"]
    stages = dict(part.strip().split(";dur=") for part in header.split(","))
    assert set(stages) == {"decode", "vad", "features", "inference", "total"}
    assert all(float(v) >= 0 for v in stages.values())


def test_batch_returns_one_result_or_error_per_file(client: TestClient) -> None:
    files = [
        ("files", ("good.wav", CLIP)),
        ("files", ("junk.bin", b"junk" * 100)),
        ("files", ("good2.flac", encode(speech_like(freq=300.0, seconds=1.0), format="FLAC"))),
    ]
    response = client.post("/predict/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["good.wav", "junk.bin", "good2.flac"]
    assert [r["status"] for r in results] == [200, 415, 200]
    assert results[1]["error"] == "unsupported_format" and results[1]["label"] is None
    assert results[0]["label"] and results[2]["probabilities"]


def test_batch_file_count_is_limited(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"max_batch_files": 2}))) as client:
        files = [("files", (f"{i}.wav", CLIP)) for i in range(3)]
        response = client.post("/predict/batch", files=files)
        assert response.status_code == 413 and response.json()["error"] == "too_many_files"


def test_streamed_body_without_length_stops_at_the_limit(client: TestClient) -> None:
    sent = 0

    def body():
        nonlocal sent
        chunk = b"\0" * 65536
        for _ in range(64):  # 4 MB against a 1 MB limit
            sent += len(chunk)
            yield chunk

    response = client.post(
        "/predict",
        content=body(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "upload_too_large"


def test_logs_are_json_with_request_id_and_no_secrets(secured: TestClient, caplog) -> None:
    caplog.set_level(logging.INFO)
    _predict(secured, {"X-API-Key": "env-key-1", "X-Request-ID": "req-123"})
    access = [r for r in caplog.records if r.name == "service.access"]
    assert access, "one access line per request"
    line = JsonFormatter().format(access[-1])
    parsed = json.loads(line)
    assert parsed["status"] == 200 and parsed["route"] == "/predict"
    assert parsed["request_id"] == "req-123"
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "env-key-1" not in everything


def test_request_id_is_honoured(client: TestClient) -> None:
    assert _predict(client, {"X-Request-ID": "abc-42"}).headers["x-request-id"] == "abc-42"


def test_raw_body_route_needs_a_key_too(secured: TestClient) -> None:
    def post(headers: dict[str, str]):
        return secured.post(
            "/predict/raw", content=CLIP, headers={"content-type": "audio/wav", **headers}
        )

    assert post({}).status_code == 401
    assert post({"X-API-Key": "wrong"}).status_code == 403
    assert post({"X-API-Key": "env-key-2"}).status_code == 200
