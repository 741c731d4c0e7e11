"""The loss over each corpus's own labels and the balance weights in real (tiny) Keras
training: hand-computed values, no gradient towards absent labels, mixup, and a fit that
exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from service import contract
from service.features import get_feature_set
from tests.helpers import tone, tone_classes

pytestmark = pytest.mark.slow


def _row(targets: list[float], mask_a: list[float], mask_b: list[float], ratio: float) -> list:
    return [*targets, *mask_a, *mask_b, ratio]


def _per_clip(loss, y_true, probs) -> np.ndarray:
    return np.asarray(loss.call(np.asarray(y_true, "float32"), np.asarray(probs, "float32")))


def test_the_masked_loss_is_cross_entropy_renormalised_over_the_corpus_labels() -> None:
    from trainer.network import MaskedCrossentropy

    probs = [[0.5, 0.3, 0.2]] * 3
    y_true = [
        # Label 0, corpus without label 2: -log(0.5 / (0.5 + 0.3)).
        _row([1, 0, 0], [1, 1, 0], [1, 1, 0], 1.0),
        # Every label allowed: the plain cross-entropy, -log(0.5).
        _row([1, 0, 0], [1, 1, 1], [1, 1, 1], 1.0),
        # A mixup blend, 0.7 of that first clip and 0.3 of a label-2 clip of a full corpus:
        # 0.7 * -log(0.5 / 0.8) + 0.3 * -log(0.2).
        _row([0.7, 0, 0.3], [1, 1, 0], [1, 1, 1], 0.7),
    ]
    got = _per_clip(MaskedCrossentropy(3), y_true, probs)
    expected = [np.log(1.6), np.log(2.0), 0.7 * np.log(1.6) + 0.3 * np.log(5.0)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Smoothing 0.1 spreads over the allowed labels only: targets 0.95 and 0.05 on the first
    # two, none on the absent third.
    smoothed = _per_clip(MaskedCrossentropy(3, label_smoothing=0.1), y_true[:1], probs[:1])
    np.testing.assert_allclose(
        smoothed, [-(0.95 * np.log(0.5 / 0.8) + 0.05 * np.log(0.3 / 0.8))], rtol=1e-5
    )


def test_with_every_label_allowed_it_is_kerass_cross_entropy() -> None:
    import keras

    from trainer.network import MaskedCrossentropy, masked_targets

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(5)[rng.integers(0, 5, size=16)]
    y_true = masked_targets(onehot, np.ones_like(onehot))
    for smoothing in (0.0, 0.1):
        plain = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        masked = MaskedCrossentropy(5, label_smoothing=smoothing)
        assert float(masked(y_true, probs)) == pytest.approx(float(plain(onehot, probs)), rel=1e-5)


def test_absent_labels_get_no_gradient() -> None:
    import keras
    import tensorflow as tf

    from trainer.network import MaskedCrossentropy, masked_targets

    logits = tf.Variable([[0.2, -1.0, 1.5, 0.3], [1.0, 0.5, -0.5, 2.0]])
    onehot = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    masks = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32)  # 4- and 3-label corpora
    for smoothing in (0.0, 0.2):
        with tf.GradientTape(persistent=True) as tape:
            probs = tf.nn.softmax(logits)
            masked = MaskedCrossentropy(4, label_smoothing=smoothing)(
                masked_targets(onehot, masks), probs
            )
            plain = keras.losses.CategoricalCrossentropy()(onehot, probs)
        grad = tape.gradient(masked, logits).numpy()
        np.testing.assert_allclose(grad[masks == 0], 0.0, atol=1e-7)
        assert np.abs(grad[masks == 1]).min() > 1e-3
        # The plain loss pushes every absent label down.
        assert (tape.gradient(plain, logits).numpy()[masks == 0] > 1e-3).all()


def test_masked_targets_refuse_a_label_outside_its_corpus() -> None:
    from trainer.network import masked_targets

    with pytest.raises(ValueError, match="outside"):
        masked_targets(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))


def test_mixup_carries_both_clips_masks_and_the_ratio() -> None:
    from trainer.network import mixup_batches

    n = 6
    # Clip i is the unit vector e_i in features and targets, so a blend's features name the
    # two clips and their ratio; each clip's corpus has its own label and some others.
    eye = np.eye(n, dtype=np.float32)
    rng = np.random.default_rng(3)
    masks = np.maximum(eye, rng.integers(0, 2, size=(n, n))).astype(np.float32)
    data = mixup_batches(eye, eye, np.ones(n), alpha=1.0, batch_size=8, seed=11, masks=masks)
    batches = [tuple(np.asarray(part) for part in batch) for batch in data]
    x = np.concatenate([batch[0] for batch in batches])
    rows = np.concatenate([batch[1] for batch in batches])
    assert rows.shape == (n, 3 * n + 1)
    np.testing.assert_allclose(rows[:, :n], x, atol=1e-6)  # targets blended as the features
    for features, row in zip(x, rows, strict=True):
        ratio, mask_a, mask_b = row[-1], row[n : 2 * n], row[2 * n : 3 * n]
        support = np.flatnonzero(features > 1e-6)
        if support.size == 1:  # blended with itself
            np.testing.assert_array_equal(mask_a, masks[support[0]])
            np.testing.assert_array_equal(mask_b, masks[support[0]])
            continue
        first = support[np.argmin(np.abs(features[support] - ratio))]
        second = support[support != first][0]
        assert features[first] == pytest.approx(ratio, abs=1e-6)
        np.testing.assert_array_equal(mask_a, masks[first])
        np.testing.assert_array_equal(mask_b, masks[second])


def test_fit_asks_for_the_masks_and_groups_its_options_need() -> None:
    from trainer.config import TrainConfig
    from trainer.network import fit

    x, y = np.zeros((4, 2), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="mask"):
        fit(x, y, x, y, n_labels=2, config=TrainConfig(mask_absent_labels=True))
    with pytest.raises(ValueError, match="group"):
        fit(x, y, x, y, n_labels=2, config=TrainConfig(balance="speaker"))


def test_a_masked_balanced_network_learns_with_mixup_smoothing_and_an_ensemble() -> None:
    from trainer.config import TrainConfig
    from trainer.network import fit, predict_proba

    fs = get_feature_set("speech-stats-v2")
    x_all, y_all = tone_classes(fs, (120.0, 240.0, 400.0), per_class=12, seed_step=70)
    # Corpus "a" has all three labels; "b" holds label 0 and 1 clips only, and many of them.
    corpus = np.where((y_all < 2) & (np.arange(len(y_all)) % 12 < 8), "b", "a")
    masks = np.where(corpus[:, None] == "b", [1, 1, 0], [1, 1, 1]).astype(np.float32)
    fit_idx, val_idx = np.arange(0, 36, 2), np.arange(1, 36, 2)
    for mixup in (0.0, 0.2):
        config = TrainConfig(
            seed=4,
            architecture="mlp",
            hidden=(32,),
            dropout=0.1,
            epochs=40,
            batch_size=8,
            class_weights=True,
            label_smoothing=0.1,
            mixup=mixup,
            ensemble=2,
            mask_absent_labels=True,
            balance="corpus",
        )
        model = fit(
            x_all[fit_idx],
            y_all[fit_idx],
            x_all[val_idx],
            y_all[val_idx],
            n_labels=3,
            config=config,
            fit_masks=masks[fit_idx],
            val_masks=masks[val_idx],
            fit_groups=corpus[fit_idx],
        )
        probs = predict_proba(model, x_all[val_idx])
        assert probs.shape == (len(val_idx), 3)  # every label, absent ones included
        assert (probs.argmax(axis=1) == y_all[val_idx]).mean() >= 0.75  # chance: 0.33


def test_training_on_two_corpora_with_mask_and_balance_exports(tmp_path: Path) -> None:
    from service.model import load_model
    from trainer.config import TrainConfig
    from trainer.corpora import Clip
    from trainer.pipeline import train_and_export

    # "full" has three labels and two voices; "four" (say TurEV-DB) lacks surprise.
    pitch = {"angry": 300.0, "sad": 130.0, "surprise": 480.0}
    clips = []
    for corpus, labels in (("full", pitch), ("four", ("angry", "sad"))):
        for s, shift in enumerate((0.95, 1.05)):
            for label in labels:
                for i in range(6):
                    path = tmp_path / corpus / f"s{s}_{label}_{i}.wav"
                    path.parent.mkdir(exist_ok=True)
                    freq = pitch[label] * shift * (1 + 0.02 * i)
                    sf.write(path, tone(freq=freq, seconds=0.4, seed=100 * s + i), 16_000)
                    clips.append(Clip(path, label, f"{corpus}:s{s}", corpus))
    out = tmp_path / "mixed.onnx"
    config = TrainConfig(
        seed=7, epochs=8, batch_size=16, ensemble=2, mask_absent_labels=True, balance="corpus"
    )
    result = train_and_export(
        clips,
        feature_set=get_feature_set("mfcc40-mean"),
        config=config,
        out_path=out,
        name="mixed",
        protocols=("speaker",),
        progress=False,
    )
    assert json.loads(result.metadata[contract.KEY_LABELS]) == ["angry", "sad", "surprise"]
    saved = json.loads(out.with_suffix(".train.json").read_text())["config"]
    assert saved["mask_absent_labels"] is True and saved["balance"] == "corpus"
    assert "own corpus's labels" in out.with_suffix(".card.md").read_text()
    model = load_model(out)  # the service takes it: every label's probability, as before
    assert model.labels == ("angry", "sad", "surprise")
