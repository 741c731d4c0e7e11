"""The model contract: what an exported ONNX graph must say about itself.

The trainer writes these keys into the ONNX ``metadata_props``; the service reads and
checks them at load. Values are strings; structured ones are JSON.
"""

from __future__ import annotations

#: Bumped when the meaning of the keys below changes.
CONTRACT_VERSION = "1"

#: The product's emotions. A model may use a subset (e.g. a corpus without "surprise")
#: but never a label outside it.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

KEY_CONTRACT = "ser.contract_version"
KEY_LABELS = "ser.labels"  # JSON list, in output order
KEY_FEATURE_SET = "ser.feature_set"  # registry name in service.features
KEY_FEATURE_CONFIG = "ser.feature_config"  # JSON, must equal the registry's config
KEY_NORMALISATION = "ser.normalisation"  # JSON: {"in_graph": true, "mean": [...], "std": [...]}
KEY_MODEL_VERSION = "ser.model_version"
KEY_MODEL_NAME = "ser.model_name"
KEY_TRAINING_DATA = "ser.training_data"  # JSON summary
KEY_METRICS = "ser.metrics"  # JSON evaluation metrics
KEY_TEMPERATURE = "ser.temperature"  # float, already applied in the graph if present
KEY_CREATED = "ser.created_utc"

REQUIRED_KEYS = (
    KEY_CONTRACT,
    KEY_LABELS,
    KEY_FEATURE_SET,
    KEY_FEATURE_CONFIG,
    KEY_NORMALISATION,
    KEY_MODEL_VERSION,
    KEY_TRAINING_DATA,
    KEY_METRICS,
)
