"""The ablation's variants compute and train what their rows claim (no corpora), and building
them registers nothing with the product."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from experiments.ablation import V2, VARIANTS, _WithoutColumns
from service.features import FEATURE_SETS
from tests.helpers import tone
from trainer.augment import apply
from trainer.recipes import DEFAULT, RECIPES


def _noisy_speech() -> np.ndarray:
    silence = np.zeros(8_000, dtype=np.float32)
    y = np.concatenate([silence, tone(freq=180.0, noise=0.0), silence])
    return apply(y, "white@10", sample_rate=16_000, seed=3)


def test_no_mfcc_means_drops_exactly_the_means() -> None:
    variant = VARIANTS["v2-no-mfcc-means"].feature_set
    y = _noisy_speech()
    keep = [
        i for i, name in enumerate(V2.names()) if not name.endswith("_mean") or "mfcc" not in name
    ]
    assert variant.names() == [V2.names()[i] for i in keep]
    assert len(keep) == V2.dim - V2.config.n_mfcc
    np.testing.assert_array_equal(variant.extract(y), V2.extract(y)[keep])


def test_no_noise_fragile_drops_only_named_existing_statistics() -> None:
    variant = VARIANTS["v2-no-noise-fragile"].feature_set
    dropped = set(V2.names()) - set(variant.names())
    assert len(dropped) == 13 == V2.dim - variant.dim
    assert {"energy_std", "f0_range", "flatness_mean"} <= dropped
    keep = [i for i, name in enumerate(V2.names()) if name not in dropped]
    y = _noisy_speech()
    np.testing.assert_array_equal(variant.extract(y), V2.extract(y)[keep])
    # A misspelt name would silently drop nothing, so it is refused.
    with pytest.raises(ValueError, match="energy_sdt"):
        _WithoutColumns("misspelt", ["energy_sdt"])


def test_feature_variants_change_only_what_they_name() -> None:
    hop = VARIANTS["v2-hop-20ms"].feature_set.config
    assert hop == replace(
        V2.config, name="v2-hop-20ms", spectral=replace(V2.config.spectral, hop_length=320)
    )
    quieter = VARIANTS["v2-silence-30db"]
    assert quieter.feature_set.config == replace(V2.config, name="v2-silence-30db", silence_db=30)
    assert quieter.config == DEFAULT.config
    y = _noisy_speech()
    assert not np.array_equal(VARIANTS["v2-pitch-16k-10ms"].feature_set.extract(y), V2.extract(y))


def test_training_variants_change_only_what_they_name() -> None:
    smoothed, mixed = VARIANTS["v2-voices-label-smoothing"], VARIANTS["v2-voices-mixup"]
    assert smoothed.feature_set is mixed.feature_set is DEFAULT.feature_set
    assert smoothed.config == replace(DEFAULT.config, label_smoothing=0.1)
    assert mixed.config == replace(DEFAULT.config, mixup=0.2)
    extra = VARIANTS["v2-voices-mid-snr"].config.augmentations
    assert extra == (*DEFAULT.config.augmentations, "white@5:15", "babble@5:15")
    assert VARIANTS["v2-more-voices"].config == DEFAULT.config
    assert VARIANTS["speech-stats-v2"].config.augmentations == DEFAULT.config.augmentations[:8]


def test_building_the_variants_registers_nothing() -> None:
    variant_sets = {v.feature_set.name for v in VARIANTS.values()} - {V2.name}
    assert variant_sets and not variant_sets & set(FEATURE_SETS)
    assert not set(VARIANTS) & set(RECIPES)
