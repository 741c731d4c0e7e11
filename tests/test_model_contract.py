from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from service import contract
from service.features import get_feature_set
from service.model import ModelContractError, load_model
from tests.helpers import make_onnx_model, tone


def test_valid_model_loads_and_predicts(tiny_model) -> None:
    model = load_model(tiny_model)
    assert model.labels == contract.EMOTIONS
    assert model.feature_set.name == "mfcc40-mean"
    prediction = model.predict(tone(seconds=1.0))
    assert prediction.label in contract.EMOTIONS
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_label_order_follows_the_metadata(tmp_path) -> None:
    labels = ("sad", "happy", "angry")
    bias = np.array([0.0, 5.0, 0.0])  # always the second output
    weights = np.zeros((40, 3))
    model = load_model(
        make_onnx_model(tmp_path / "m.onnx", labels=labels, weights=weights, bias=bias)
    )
    assert model.predict(tone(seconds=1.0)).label == "happy"


def test_batch_prediction_has_dynamic_batch(tiny_model) -> None:
    model = load_model(tiny_model)
    fs = get_feature_set("mfcc40-mean")
    batch = np.stack([fs.extract(tone(freq=f, seconds=1.0)) for f in (100.0, 200.0, 300.0)])
    assert model.predict_proba(batch).shape == (3, 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop_keys": [contract.KEY_LABELS]}, "lacks contract metadata"),
        ({"drop_keys": [contract.KEY_FEATURE_CONFIG]}, "lacks contract metadata"),
        ({"metadata_overrides": {contract.KEY_CONTRACT: "99"}}, "contract"),
        ({"metadata_overrides": {contract.KEY_FEATURE_SET: "mfcc13-mean"}}, "unknown feature set"),
        ({"labels": ("angry", "bored")}, "labels"),
        ({"labels": ("angry", "angry")}, "labels"),
        ({"input_dim": 13}, "input of shape"),
        ({"metadata_overrides": {contract.KEY_METRICS: "{not json"}}, "malformed"),
    ],
)
def test_mismatching_models_are_refused(tmp_path, kwargs, message) -> None:
    path = make_onnx_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelContractError, match=message):
        load_model(path)


def test_drifted_feature_config_is_refused(tmp_path) -> None:
    config = get_feature_set("mfcc40-mean").to_dict()
    config["spectral"]["hop_length"] = 256
    path = make_onnx_model(
        tmp_path / "drift.onnx",
        metadata_overrides={contract.KEY_FEATURE_CONFIG: json.dumps(config)},
    )
    with pytest.raises(ModelContractError, match="drift"):
        load_model(path)


def test_missing_and_corrupt_files_are_refused(tmp_path) -> None:
    with pytest.raises(ModelContractError, match="not found"):
        load_model(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(ModelContractError, match="cannot load"):
        load_model(junk)


def test_non_finite_features_are_refused_not_answered(tiny_model) -> None:
    from service.features import FeatureError

    model = load_model(tiny_model)
    bad = np.full(40, np.inf, dtype=np.float32)
    with pytest.raises(FeatureError):
        model.predict_proba(bad)


@pytest.mark.parametrize("retired", ["speech-stats-v1", "speech-stats-v2+ge2e"])
def test_a_model_on_a_retired_feature_set_is_refused_with_what_to_do(tmp_path, retired) -> None:
    config = get_feature_set("speech-stats-v2").to_dict() | {"name": retired}
    path = make_onnx_model(
        tmp_path / "old.onnx",
        feature_set="speech-stats-v2",
        metadata_overrides={
            contract.KEY_FEATURE_SET: retired,
            contract.KEY_FEATURE_CONFIG: json.dumps(config),
        },
    )
    with pytest.raises(ModelContractError) as refused:
        load_model(path)
    message = str(refused.value)
    assert f"feature set {retired!r} was retired in service 0.2.0" in message
    assert "ser-train" in message and "older release" in message


def _edited(path: Path, edit) -> Path:
    """The valid tiny model at ``path`` with ``edit(graph)`` applied, checked and saved."""
    model = onnx.load(str(path))
    edit(model.graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _narrow_output(graph: onnx.GraphProto) -> None:
    """Six probabilities for the metadata's seven labels."""
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(array[..., :6].copy(), init.name))
    graph.output[0].CopyFrom(
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 6])
    )


def _second_input(graph: onnx.GraphProto) -> None:
    """A second input (a per-class prior added to the logits)."""
    graph.input.append(helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["batch", 7]))
    for node in graph.node:
        if node.op_type == "Add":
            node.input[1] = "prior"


def _second_output(graph: onnx.GraphProto) -> None:
    """The logits exposed beside the probabilities."""
    graph.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7]))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_narrow_output, r"output of shape \['batch', 6\] for 7 labels"),
        (_second_input, "2 inputs and 1 outputs"),
        (_second_output, "1 inputs and 2 outputs"),
    ],
)
def test_a_graph_of_the_wrong_shape_is_refused(tmp_path, edit, message) -> None:
    """The README promises that a model whose inputs or outputs disagree with its contract
    is refused at load: one input of the feature set's width, one output of one probability
    per label."""
    path = _edited(make_onnx_model(tmp_path / "bad.onnx"), edit)
    with pytest.raises(ModelContractError, match=message):
        load_model(path)
