"""experiments/voice_encoder.py's variants of the accurate model: subsets of the encoder's
outputs in their order, and training variants that change only what they name."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from experiments.voice_encoder import ACCURATE_FEATURES, VARIANTS, encoder_variant
from service.features import FEATURE_SETS, FeatureError
from tests.helpers import tone
from trainer.recipes import ACCURATE, DEFAULT, RECIPES

HIDDEN = ACCURATE_FEATURES.config.encoder.hidden


def test_a_subset_keeps_the_statistics_then_its_parts_in_order() -> None:
    y = tone(freq=200.0, noise=0.01)
    full = ACCURATE_FEATURES.extract(y)
    stats_dim = ACCURATE_FEATURES.statistics.dim
    mean_std = encoder_variant("test-mean-std", ("mean", "std"))
    std_only = encoder_variant("test-std", ("std",))
    assert mean_std.dim == len(mean_std.names()) == stats_dim + 2 * HIDDEN
    assert std_only.names()[stats_dim] == "encoder_std0"
    np.testing.assert_array_equal(
        mean_std.extract(y), np.delete(full, np.s_[stats_dim : stats_dim + HIDDEN])
    )
    np.testing.assert_array_equal(std_only.extract(y)[stats_dim:], full[-HIDDEN:])
    encoder = std_only.to_dict()["encoder"]
    assert encoder == {**ACCURATE_FEATURES.to_dict()["encoder"], "parts": ["std"]}
    assert "test-std" not in FEATURE_SETS


def test_unknown_parts_are_refused() -> None:
    with pytest.raises(FeatureError, match="parts"):
        encoder_variant("test-bad", ("pitch",))


def test_training_variants_change_only_what_they_name() -> None:
    unfused = VARIANTS["v2-voices+encoder-trim40-int8"]
    assert unfused.feature_set is ACCURATE_FEATURES and unfused.config == DEFAULT.config
    subset = VARIANTS["v2-voices+encoder-trim40-int8-mean-std"].feature_set
    assert subset.to_dict()["encoder"]["parts"] == ["mean", "std"]
    fused = VARIANTS["fused-default+accurate-int8"]
    assert fused.feature_set is ACCURATE_FEATURES
    assert fused.config == replace(DEFAULT.config, fuse_statistics=0.5)
    third = VARIANTS["fused-default-third+accurate-int8"]
    assert third.config == replace(fused.config, fuse_statistics=1 / 3)
    # The accurate recipe is the third-weight fusion with label smoothing 0.1.
    shipped = VARIANTS["fused-default-third+accurate-int8-label-smoothing"]
    assert shipped.config == ACCURATE.config == replace(third.config, label_smoothing=0.1)
    stronger = VARIANTS["fused-default-third+accurate-int8-label-smoothing-0.2"]
    assert stronger.config == replace(ACCURATE.config, label_smoothing=0.2)
    assert "label smoothing 0.2" in stronger.description
    assert list(RECIPES) == ["paper", "default", "accurate"]
