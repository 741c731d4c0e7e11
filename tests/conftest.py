from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.settings import BUNDLED_MODEL, Settings
from tests.helpers import make_onnx_model

#: The models the fuzz and edge-case API tests run against: the tiny test model, and both
#: bundled ones (their feature sets take other paths through silence, clipping and length).
SERVED_MODELS = ["tiny", "ser-default.onnx", "ser-accurate.onnx"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def _limits(model_path: Path) -> Settings:
    return Settings(model_path=model_path, max_upload_mb=1.0, max_audio_seconds=5.0, max_inflight=4)


@pytest.fixture
def settings(tiny_model: Path) -> Settings:
    return _limits(tiny_model)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=SERVED_MODELS)
def any_model_client(request: pytest.FixtureRequest, tiny_model: Path) -> Iterator[TestClient]:
    """A client of the app serving each of :data:`SERVED_MODELS` in turn, with the limits of
    ``settings``; one app per model and module (loading the accurate model takes a while)."""
    path = tiny_model if request.param == "tiny" else BUNDLED_MODEL.parent / request.param
    with TestClient(create_app(_limits(path)), raise_server_exceptions=False) as test_client:
        yield test_client
