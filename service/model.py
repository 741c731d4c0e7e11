"""Load an exported ONNX emotion model, check its contract, and run it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service import contract
from service.features import (
    RETIRED_FEATURE_SETS,
    FeatureError,
    FeatureSet,
    config_fingerprint,
    get_feature_set,
)

log = logging.getLogger(__name__)


class ModelContractError(RuntimeError):
    """The model file is missing, unreadable, or does not match this service's features."""


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass
class EmotionModel:
    """An ONNX classifier over one registered feature set, with its contract checked."""

    path: Path
    session: ort.InferenceSession
    labels: tuple[str, ...]
    feature_set: FeatureSet
    metadata: dict[str, str]
    input_name: str = field(init=False)

    def __post_init__(self) -> None:
        self.input_name = self.session.get_inputs()[0].name

    @property
    def version(self) -> str:
        return self.metadata[contract.KEY_MODEL_VERSION]

    @property
    def name(self) -> str:
        return self.metadata.get(contract.KEY_MODEL_NAME, self.path.stem)

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metadata[contract.KEY_METRICS])

    @property
    def training_data(self) -> dict[str, Any]:
        return json.loads(self.metadata[contract.KEY_TRAINING_DATA])

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "labels": list(self.labels),
            "feature_set": self.feature_set.name,
            "feature_config": self.feature_set.to_dict(),
            "created_utc": self.metadata.get(contract.KEY_CREATED),
            "training_data": self.training_data,
            "metrics": self.metrics,
        }

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities of shape ``(batch, n_labels)`` for features ``(batch, dim)``."""
        batch = np.ascontiguousarray(features, dtype=np.float32)
        if batch.ndim == 1:
            batch = batch[None, :]
        if not np.isfinite(batch).all():
            raise FeatureError("the features of this audio are not finite")
        (probs,) = self.session.run(None, {self.input_name: batch})
        return np.asarray(probs, dtype=np.float64)

    def predict(self, samples: np.ndarray) -> Prediction:
        """Classify canonical-rate mono ``samples`` of shape ``(n,)``."""
        probs = self.predict_proba(self.feature_set.extract(samples))[0]
        return self.to_prediction(probs)

    def to_prediction(self, probs: np.ndarray) -> Prediction:
        best = int(np.argmax(probs))
        return Prediction(
            label=self.labels[best],
            confidence=float(probs[best]),
            probabilities={label: float(p) for label, p in zip(self.labels, probs, strict=True)},
        )


def _session_options(threads: int) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    # One request is a tiny MLP: threads only add overhead; parallelism comes from workers.
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def load_model(path: str | Path, *, threads: int = 1) -> EmotionModel:
    """Load and validate the model at ``path``.

    Raises
    ------
    ModelContractError
        If the file is missing or unreadable, lacks contract metadata, names an unknown or
        retired feature set (:data:`service.features.RETIRED_FEATURE_SETS`; the message says
        how to proceed), records a feature configuration different from this service's, uses
        labels outside :data:`service.contract.EMOTIONS`, has other than one input and one
        output, has input/output shapes that disagree with its feature set and labels, or
        needs a pretrained encoder whose file is missing or not the one its features were
        defined on.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelContractError(f"model file not found: {path}")
    try:
        session = ort.InferenceSession(
            str(path), sess_options=_session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises several private exception types
        raise ModelContractError(f"onnxruntime cannot load {path}: {exc}") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    missing = [key for key in contract.REQUIRED_KEYS if key not in meta]
    if missing:
        raise ModelContractError(f"{path} lacks contract metadata: {', '.join(missing)}")
    if meta[contract.KEY_CONTRACT] != contract.CONTRACT_VERSION:
        raise ModelContractError(
            f"{path} uses contract {meta[contract.KEY_CONTRACT]!r}; "
            f"this service reads {contract.CONTRACT_VERSION!r}"
        )
    try:
        labels = tuple(json.loads(meta[contract.KEY_LABELS]))
        recorded_config = json.loads(meta[contract.KEY_FEATURE_CONFIG])
        json.loads(meta[contract.KEY_METRICS])
        json.loads(meta[contract.KEY_TRAINING_DATA])
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelContractError(f"{path} has malformed contract metadata: {exc}") from exc
    unknown = [label for label in labels if label not in contract.EMOTIONS]
    if not labels or unknown or len(set(labels)) != len(labels):
        raise ModelContractError(
            f"{path} has labels {list(labels)}; "
            f"they must be distinct and among {list(contract.EMOTIONS)}"
        )
    try:
        feature_set = get_feature_set(meta[contract.KEY_FEATURE_SET])
    except FeatureError as exc:
        advice = (
            "; retrain the model on a current feature set with ser-train (ser-train --recipe "
            "default, or accurate), or serve it with an older release of the service (0.1.x)"
            if meta[contract.KEY_FEATURE_SET] in RETIRED_FEATURE_SETS
            else ""
        )
        raise ModelContractError(f"{path}: {exc}{advice}") from exc
    if config_fingerprint(recorded_config) != config_fingerprint(feature_set.to_dict()):
        raise ModelContractError(
            f"{path} was trained with feature set {feature_set.name!r} configured as "
            f"{recorded_config}, but this service computes {feature_set.to_dict()}: "
            "features would drift; retrain or upgrade the service"
        )
    # At load, not on the first request: a missing or different encoder file refuses the
    # model the way a drifted configuration does.
    try:
        feature_set.prepare()
    except FeatureError as exc:
        raise ModelContractError(f"{path}: {exc}") from exc
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelContractError(
            f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; "
            "it must have one input (features) and one output (probabilities)"
        )
    in_shape, out_shape = inputs[0].shape, outputs[0].shape
    if len(in_shape) != 2 or in_shape[1] != feature_set.dim:
        raise ModelContractError(
            f"{path} takes input of shape {in_shape}; feature set {feature_set.name!r} "
            f"gives (batch, {feature_set.dim})"
        )
    if len(out_shape) != 2 or out_shape[1] != len(labels):
        raise ModelContractError(
            f"{path} gives output of shape {out_shape} for {len(labels)} labels"
        )
    model = EmotionModel(
        path=path, session=session, labels=labels, feature_set=feature_set, metadata=meta
    )
    log.info(
        "loaded model %s version %s (%s, %d labels)",
        path,
        model.version,
        feature_set.name,
        len(labels),
    )
    return model
