"""bench/voice_encoder.py's variants of the served encoder feature set: subsets of its outputs
in their order, the int8 encoder made from the shipped one, and registration only when run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest

from bench import ablation
from bench.voice_encoder import (
    ACCURATE_FEATURE_SET,
    ACCURATE_RECIPE,
    FLOAT_FEATURE_SET,
    FLOAT_RECIPE,
    HIDDEN,
    PARTS,
    encoder_variant,
    register,
)
from service.features import FEATURE_SETS, FeatureError, StatsWithEncoder, get_feature_set
from tests.helpers import tone
from trainer.recipes import RECIPES


@pytest.fixture
def int8_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "encoder-int8.onnx"
    monkeypatch.setenv("SER_VOICE_ENCODER_INT8", str(path))
    return path


def test_a_subset_keeps_the_statistics_then_its_parts_in_order() -> None:
    served = get_feature_set(FLOAT_FEATURE_SET)
    y = tone(freq=200.0, noise=0.01)
    full = served.extract(y)
    stats_dim = get_feature_set("speech-stats-v2").dim
    mean_std = encoder_variant("test-mean-std", ("mean", "std"))
    std_only = encoder_variant("test-std", ("std",))
    assert mean_std.dim == len(mean_std.names()) == stats_dim + 2 * HIDDEN
    assert std_only.names()[stats_dim] == "encoder_std0"
    np.testing.assert_array_equal(
        mean_std.extract(y), np.delete(full, np.s_[stats_dim : stats_dim + HIDDEN])
    )
    np.testing.assert_array_equal(std_only.extract(y)[stats_dim:], full[-HIDDEN:])
    assert std_only.to_dict()["encoder"]["parts"] == ["std"]
    assert std_only.to_dict()["encoder"]["sha256"] == served.to_dict()["encoder"]["sha256"]


def test_the_int8_encoder_is_made_from_the_shipped_one_and_named_by_content(
    int8_path: Path,
) -> None:
    y = tone(freq=200.0, noise=0.01)
    float32 = get_feature_set(FLOAT_FEATURE_SET)
    int8 = encoder_variant("test-int8", PARTS, int8=True)
    assert int8_path.exists()
    recorded = int8.to_dict()["encoder"]
    assert recorded["file"] == str(int8_path)
    assert recorded["sha256"] != float32.to_dict()["encoder"]["sha256"]
    assert isinstance(float32, StatsWithEncoder)
    exact, quantised = float32.encoder.extract(y), int8.encoder.extract(y)
    assert exact.shape == quantised.shape and not np.array_equal(exact, quantised)


def test_unknown_parts_are_refused() -> None:
    with pytest.raises(FeatureError, match="parts"):
        encoder_variant("test-bad", ("pitch",))


def test_variants_are_registered_by_the_command_not_by_importing_it(int8_path: Path) -> None:
    # Importing it must add no variant to the registries (nor make an int8 file).
    assert not [name for name in FEATURE_SETS if name.startswith("v2+encoder")]
    assert "v2-voices+encoder" not in RECIPES and not int8_path.exists()
    with patch.dict(FEATURE_SETS), patch.dict(RECIPES), patch.dict(ablation.VARIANTS):
        register()
        recipe = RECIPES["v2-voices+encoder-int8"]
        assert ablation.VARIANTS["v2-voices+encoder-int8"] is recipe
        assert recipe.config == RECIPES["speech-stats-v2-voices"].config
        assert "int8" in FEATURE_SETS[recipe.feature_set].to_dict()["encoder"]["source"]
        # The served recipe, under its logged name; the first encoder variant saw every frame.
        served = ablation.VARIANTS["v2-voices+encoder-trim40"]
        assert served.feature_set == RECIPES[FLOAT_RECIPE].feature_set == FLOAT_FEATURE_SET
        assert served.config == RECIPES[FLOAT_RECIPE].config
        # The accurate model's recipe (int8 encoder), under its logged name.
        served_int8 = ablation.VARIANTS["v2-voices+encoder-trim40-int8"]
        assert served_int8.feature_set == ACCURATE_FEATURE_SET
        assert served_int8.config == RECIPES[FLOAT_RECIPE].config
        # Its subset is built on the int8 encoder, not the float one.
        subset = FEATURE_SETS[
            ablation.VARIANTS["v2-voices+encoder-trim40-int8-mean-std"].feature_set
        ]
        int8_encoder = FEATURE_SETS[ACCURATE_FEATURE_SET].to_dict()["encoder"]
        assert subset.to_dict()["encoder"] == {**int8_encoder, "parts": ["mean", "std"]}
        untrimmed = FEATURE_SETS[ablation.VARIANTS["v2-voices+encoder"].feature_set]
        assert untrimmed.to_dict()["encoder"]["edge_trim_db"] is None
        # The late fusion: the accurate model's recipe, fused with a statistics network.
        fused = ablation.VARIANTS["fused-default+accurate-int8"]
        assert fused.feature_set == ACCURATE_FEATURE_SET and fused.config.fuse_statistics
        assert fused.config == replace(RECIPES[ACCURATE_RECIPE].config, fuse_statistics=0.5)
        third = ablation.VARIANTS["fused-default-third+accurate-int8"]
        assert third.config == replace(fused.config, fuse_statistics=1 / 3)
        smoothed = ablation.VARIANTS["fused-default-third+accurate-int8-label-smoothing"]
        assert smoothed.feature_set == ACCURATE_FEATURE_SET
        assert smoothed.config == replace(third.config, label_smoothing=0.1)
