"""Export a trained Keras model to ONNX with tf2onnx, check parity, write the contract."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from service import contract  # noqa: E402
from service.features import FeatureSet  # noqa: E402
from trainer.network import Standardise  # noqa: E402

PARITY_TOLERANCE = 1e-5
OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"


class ExportError(RuntimeError):
    """The exported graph does not reproduce the Keras model."""


def keras_to_onnx(model: keras.Model, *, input_dim: int) -> onnx.ModelProto:
    """Convert via ``tf2onnx.convert.from_function`` (``from_keras`` fails on Keras 3)."""
    signature = (tf.TensorSpec((None, input_dim), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_NAME: model(features, training=False)}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    return proto


def weights_digest(proto: onnx.ModelProto) -> str:
    digest = hashlib.sha256()
    for init in sorted(proto.graph.initializer, key=lambda t: t.name):
        digest.update(init.name.encode())
        digest.update(init.raw_data or onnx.numpy_helper.to_array(init).tobytes())
    return digest.hexdigest()


def check_parity(
    proto: onnx.ModelProto,
    model: keras.Model,
    features: np.ndarray,
    *,
    tolerance: float = PARITY_TOLERANCE,
) -> float:
    """Max abs difference between onnxruntime and Keras; :class:`ExportError` past ``tolerance``."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = features.astype(np.float32)
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x})
    keras_out = np.asarray(model(x, training=False))
    diff = float(np.abs(onnx_out - keras_out).max())
    if not diff <= tolerance:
        raise ExportError(f"ONNX output differs from Keras by {diff:.2e} (> {tolerance:.0e})")
    return diff


def standardisation(model: keras.Model) -> tuple[np.ndarray, np.ndarray]:
    """The in-graph input statistics, read back from the model's ``standardise`` layer (in a
    fused model, the one of the network that reads every feature, which comes first)."""
    layer = _first_standardise(model)
    if layer is None:
        raise ExportError(f"model {model.name} has no standardise layer")
    mean = keras.ops.convert_to_numpy(layer.mean)
    std = 1.0 / keras.ops.convert_to_numpy(layer.inv_std)
    return mean, std


def _first_standardise(model: keras.Model) -> Standardise | None:
    for layer in model.layers:
        if isinstance(layer, Standardise):
            return layer
        if isinstance(layer, keras.Model):
            found = _first_standardise(layer)
            if found is not None:
                return found
    return None


def export_model(
    model: keras.Model,
    *,
    path: Path,
    name: str,
    labels: Sequence[str],
    feature_set: FeatureSet,
    parity_features: np.ndarray,
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    version: str | None = None,
    temperature: float | None = None,
) -> dict[str, str]:
    """Write ``path`` (ONNX with contract metadata) after the parity check.

    Returns the metadata written. ``version`` defaults to a digest of the weights, so a
    reproduced model gets the same version.
    """
    proto = keras_to_onnx(model, input_dim=feature_set.dim)
    parity = check_parity(proto, model, parity_features)
    mean, std = standardisation(model)
    digest = weights_digest(proto)
    metrics = {**metrics, "export_parity_max_abs_diff": parity}
    meta = {
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_MODEL_NAME: name,
        contract.KEY_MODEL_VERSION: version or f"{name}-{digest[:12]}",
        contract.KEY_LABELS: json.dumps(list(labels)),
        contract.KEY_FEATURE_SET: feature_set.name,
        contract.KEY_FEATURE_CONFIG: json.dumps(feature_set.to_dict(), sort_keys=True),
        contract.KEY_NORMALISATION: json.dumps(
            {"in_graph": True, "mean": np.round(mean, 6).tolist(), "std": np.round(std, 6).tolist()}
        ),
        contract.KEY_TRAINING_DATA: json.dumps(training_data, sort_keys=True),
        contract.KEY_METRICS: json.dumps(metrics, sort_keys=True),
        **({contract.KEY_TEMPERATURE: f"{temperature:.6g}"} if temperature is not None else {}),
        contract.KEY_CREATED: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = f"Speech emotion recognition model {meta[contract.KEY_MODEL_VERSION]}"
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return meta
