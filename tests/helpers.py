"""Synthetic audio and tiny ONNX models for tests: no corpora, no network, no TensorFlow."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper

from service import contract
from service.features import get_feature_set


def tone(
    *,
    freq: float = 220.0,
    seconds: float = 1.0,
    rate: int = 16_000,
    amplitude: float = 0.3,
    channels: int = 1,
    seed: int = 0,
    noise: float = 0.01,
) -> np.ndarray:
    """A harmonic tone with a little noise: shape ``(n,)`` or ``(n, channels)``, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    y = sum(amplitude / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    y = y + noise * rng.standard_normal(t.shape)
    y = y.astype(np.float32)
    if channels > 1:
        y = np.stack([y * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return y


def tone_classes(
    feature_set: Any, freqs: Sequence[float], *, per_class: int, seed_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features of half-second tones, one pitch class per label (each clip detuned by up to
    9%): ``x`` of shape ``(len(freqs) * per_class, dim)``, float32, and ``y`` the labels."""
    x, y = [], []
    for label, freq in enumerate(freqs):
        for i in range(per_class):
            clip = tone(freq=freq * (1 + 0.03 * (i % 4)), seconds=0.5, seed=seed_step * label + i)
            x.append(feature_set.extract(clip).reshape(-1))
            y.append(label)
    return np.array(x, dtype=np.float32), np.array(y)


def encode(
    samples: np.ndarray, *, rate: int = 16_000, format: str = "WAV", subtype: str | None = None
) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=format, subtype=subtype)
    return buffer.getvalue()


#: Evaluation metrics in the shape the trainer writes (a protocol, a held-out group, a summary).
DEFAULT_METRICS = {
    "speaker": {
        "tess": {
            "folds": 2,
            "accuracy": 0.5,
            "accuracy_std": 0.1,
            "unweighted_accuracy": 0.5,
            "unweighted_accuracy_std": 0.1,
            "macro_f1": 0.45,
            "macro_f1_std": 0.1,
            "labels": list(contract.EMOTIONS),
            "per_class_recall": {e: 0.5 for e in contract.EMOTIONS},
            "confusion": [[5 if i == j else 1 for j in range(7)] for i in range(7)],
        }
    }
}


def make_onnx_model(
    path: Path,
    *,
    feature_set: str = "mfcc40-mean",
    labels: Sequence[str] = contract.EMOTIONS,
    seed: int = 0,
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    metadata_overrides: dict[str, Any] | None = None,
    drop_keys: Sequence[str] = (),
    input_dim: int | None = None,
) -> Path:
    """A linear softmax classifier over ``feature_set`` with full contract metadata."""
    fs = get_feature_set(feature_set)
    dim = input_dim or fs.dim
    rng = np.random.default_rng(seed)
    w = weights if weights is not None else 0.01 * rng.standard_normal((dim, len(labels)))
    b = bias if bias is not None else np.zeros(len(labels))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["logits0"]),
            helper.make_node("Add", ["logits0", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(b.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    meta: dict[str, str] = {
        contract.KEY_CONTRACT: contract.CONTRACT_VERSION,
        contract.KEY_MODEL_NAME: "tiny",
        contract.KEY_MODEL_VERSION: f"tiny-{seed}",
        contract.KEY_LABELS: json.dumps(list(labels)),
        contract.KEY_FEATURE_SET: fs.name,
        contract.KEY_FEATURE_CONFIG: json.dumps(fs.to_dict()),
        contract.KEY_NORMALISATION: json.dumps({"in_graph": True}),
        contract.KEY_TRAINING_DATA: json.dumps({"clips": 0, "corpora": {}}),
        contract.KEY_METRICS: json.dumps(DEFAULT_METRICS),
    }
    for key, value in (metadata_overrides or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    for key in drop_keys:
        meta.pop(key, None)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
