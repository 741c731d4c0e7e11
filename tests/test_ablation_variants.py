"""The ablation's bench-only feature variants compute what their rows claim (no corpora)."""

from __future__ import annotations

import numpy as np

from bench.ablation import FEATURE_SETS
from service.features import get_feature_set
from tests.helpers import tone
from trainer.augment import apply


def _noisy_speech() -> np.ndarray:
    silence = np.zeros(8_000, dtype=np.float32)
    y = np.concatenate([silence, tone(freq=180.0, noise=0.0), silence])
    return apply(y, "white@10", sample_rate=16_000, seed=3)


def test_both_gates_is_the_gated_then_the_ungated_statistics() -> None:
    v2 = get_feature_set("speech-stats-v2")
    both = FEATURE_SETS["v2-both-gates"]
    y = _noisy_speech()
    out = both.extract(y)
    assert out.shape == (2 * v2.dim,) == (both.dim,)
    np.testing.assert_array_equal(out[: v2.dim], v2.extract(y))
    without_gate = FEATURE_SETS["v2-no-floor-gate"].extract(y)
    np.testing.assert_array_equal(out[v2.dim :], without_gate)
    # In noise the two halves pool different frames, so they must differ.
    assert not np.allclose(out[: v2.dim], out[v2.dim :])
    assert both.names()[v2.dim] == v2.names()[0] + "_ungated"


def test_no_mfcc_means_drops_exactly_the_means() -> None:
    v2 = get_feature_set("speech-stats-v2")
    variant = FEATURE_SETS["v2-no-mfcc-means"]
    y = _noisy_speech()
    keep = [
        i for i, name in enumerate(v2.names()) if not name.endswith("_mean") or "mfcc" not in name
    ]
    assert variant.names() == [v2.names()[i] for i in keep]
    assert len(keep) == v2.dim - v2.config.n_mfcc
    np.testing.assert_array_equal(variant.extract(y), v2.extract(y)[keep])


def test_no_noise_fragile_drops_only_named_existing_statistics() -> None:
    v2 = get_feature_set("speech-stats-v2")
    variant = FEATURE_SETS["v2-no-noise-fragile"]
    dropped = set(v2.names()) - set(variant.names())
    # A misspelt name would silently drop nothing, so every one must exist in v2.
    assert len(dropped) == 13 == v2.dim - variant.dim
    assert {"energy_std", "f0_range", "flatness_mean"} <= dropped
    keep = [i for i, name in enumerate(v2.names()) if name not in dropped]
    y = _noisy_speech()
    np.testing.assert_array_equal(variant.extract(y), v2.extract(y)[keep])


def test_training_variants_change_only_what_they_name() -> None:
    from dataclasses import replace

    from bench.ablation import VARIANTS
    from trainer.recipes import RECIPES

    bundled = RECIPES["speech-stats-v2-voices"]
    smoothed, mixed = VARIANTS["v2-voices-label-smoothing"], VARIANTS["v2-voices-mixup"]
    assert smoothed.feature_set == mixed.feature_set == bundled.feature_set
    assert smoothed.config == replace(bundled.config, label_smoothing=0.1)
    assert mixed.config == replace(bundled.config, mixup=0.2)
    extra = VARIANTS["v2-voices-mid-snr"].config.augmentations
    assert extra == (*bundled.config.augmentations, "white@5:15", "babble@5:15")
