"""Schemathesis against the OpenAPI schema, in process: generated requests never get a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from service.api import create_app
from service.settings import Settings
from tests.helpers import make_onnx_model


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    model = make_onnx_model(tmp_path_factory.mktemp("schema") / "tiny.onnx")
    app = create_app(Settings(model_path=model, max_upload_mb=1.0, max_audio_seconds=5.0))
    with TestClient(app):  # runs the lifespan: the model is loaded on app.state
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed_without_server_errors(api_schema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    names = {f"{op.method.upper()} {op.path}" for op in operations}
    assert {"POST /predict", "POST /predict/batch", "GET /metrics", "GET /v1/model"} <= names
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        check()
