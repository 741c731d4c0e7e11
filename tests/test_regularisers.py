"""Mixup and label smoothing in the trainer: the batches are true blends, training on them
still learns, and the card says they were used."""

from __future__ import annotations

import numpy as np
import pytest

from service.features import get_feature_set
from tests.helpers import tone_classes

pytestmark = pytest.mark.slow


def _epoch(dataset) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [tuple(np.asarray(part) for part in batch) for batch in dataset]


def test_mixup_blends_features_targets_and_weights_alike() -> None:
    from trainer.network import mixup_batches, seed_everything

    # TensorFlow's op seeds combine with the global seed, which any earlier fit in the
    # session leaves set: pin it, so the blends drawn here do not depend on test order.
    seed_everything(0)
    n = 12
    # Clip i is the unit vector e_i in features and targets, so a blend's features name the
    # two clips and their ratio, which its targets and weight must repeat.
    eye = np.eye(n, dtype=np.float32)
    weights = np.arange(1, n + 1, dtype=np.float32)
    dataset = mixup_batches(eye, eye, weights, alpha=0.4, batch_size=5, seed=7)
    batches = _epoch(dataset)
    assert [len(b[0]) for b in batches] == [5, 5, 2]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    np.testing.assert_allclose(x, y, atol=1e-6)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(w, x @ weights, rtol=1e-5)
    # A blend is of two clips of one batch (or a clip with itself), and most are true blends.
    support = x > 1e-3
    assert (support.sum(axis=1) <= 2).all()
    starts = np.cumsum([0] + [len(b[0]) for b in batches])
    for start, stop in zip(starts[:-1], starts[1:], strict=True):
        in_batch = support[start:stop].any(axis=0)
        assert in_batch.sum() == stop - start
    assert (support.sum(axis=1) == 2).mean() >= 0.5
    # Reproducible from the seed, and re-blended in the next epoch.
    again = _epoch(mixup_batches(eye, eye, weights, alpha=0.4, batch_size=5, seed=7))
    for first, second in zip(batches, again, strict=True):
        np.testing.assert_array_equal(first[0], second[0])
    second_epoch = np.concatenate([b[0] for b in _epoch(dataset)])
    assert not np.allclose(second_epoch, x)


def test_mixup_refuses_a_non_positive_alpha() -> None:
    from trainer.network import mixup_batches

    eye = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="alpha"):
        mixup_batches(eye, eye, np.ones(3), alpha=0.0, batch_size=2, seed=0)


def test_a_network_trained_with_mixup_and_label_smoothing_still_learns() -> None:
    from trainer.config import TrainConfig
    from trainer.network import fit, predict_proba

    fs = get_feature_set("speech-stats-v2")
    x_all, y_all = tone_classes(fs, (120.0, 240.0, 400.0), per_class=12, seed_step=70)
    fit_idx, val_idx = np.arange(0, 36, 2), np.arange(1, 36, 2)
    config = TrainConfig(
        seed=4,
        architecture="mlp",
        hidden=(32,),
        dropout=0.1,
        epochs=40,
        batch_size=8,
        class_weights=True,
        label_smoothing=0.1,
        mixup=0.2,
    )
    model = fit(
        x_all[fit_idx], y_all[fit_idx], x_all[val_idx], y_all[val_idx], n_labels=3, config=config
    )
    probs = predict_proba(model, x_all[val_idx])
    assert (probs.argmax(axis=1) == y_all[val_idx]).mean() >= 0.75  # chance: 0.33
    # Smoothed targets keep the network from certainty: 0.1 spread over 3 labels caps the
    # target at 0.933, and the network's answers stay near it rather than at 1.
    assert probs.max() < 0.99


def test_the_card_names_the_regularisers() -> None:
    from trainer.card import _regularisers
    from trainer.config import TrainConfig

    assert _regularisers(TrainConfig()) == ""
    text = _regularisers(TrainConfig(label_smoothing=0.1, mixup=0.2))
    assert "label smoothing 0.1" in text
    assert "Beta(0.2, 0.2)" in text
