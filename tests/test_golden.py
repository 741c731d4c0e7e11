"""Both bundled models answer synthetic clips exactly as they did when the values were
recorded (``python -m tests.golden``): feature vectors and probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.model import load_model
from service.settings import BUNDLED_MODEL
from tests.golden import GOLDEN, MODELS, golden_clips

RECORDED = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("file", MODELS)
def test_a_bundled_model_gives_its_recorded_features_and_probabilities(file: str) -> None:
    model = load_model(BUNDLED_MODEL.parent / file)
    recorded = RECORDED[file]
    assert model.version == recorded["version"]
    assert model.feature_set.name == recorded["feature_set"]
    for name, samples in golden_clips().items():
        features = model.feature_set.extract(samples)
        expected = np.array(recorded[name]["features"], dtype=np.float32)
        assert features.shape == expected.shape, name
        # float32 round-off only: a moved reduction may reorder sums, nothing more.
        np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4, err_msg=name)
        probs = model.predict_proba(features)[0]
        np.testing.assert_allclose(probs, recorded[name]["probabilities"], atol=1e-4, err_msg=name)
        assert (
            model.labels[int(np.argmax(probs))]
            == model.labels[int(np.argmax(recorded[name]["probabilities"]))]
        )
