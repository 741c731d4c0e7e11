"""Training on a mix of corpora, without TensorFlow: each corpus's label set, the label masks
and the balance weights the trainer derives from the training clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainer.config import TrainConfig
from trainer.corpora import Clip
from trainer.corpus_mix import (
    balance_groups,
    balance_weights,
    combine_weights,
    corpus_label_sets,
    fit_arguments,
    label_masks,
)
from trainer.recipes import RECIPES

MODELS = Path(__file__).resolve().parent.parent / "models"


def _clips(spec: list[tuple[str, str, str, int]]) -> list[Clip]:
    """``(corpus, speaker, label, count)`` rows as clips."""
    return [
        Clip(Path(f"/x/{corpus}-{speaker}-{label}-{i}.wav"), label, f"{corpus}:{speaker}", corpus)
        for corpus, speaker, label, count in spec
        for i in range(count)
    ]


def test_each_corpus_has_the_labels_its_training_clips_carry() -> None:
    clips = _clips(
        [
            ("tess", "OAF", "surprise", 2),
            ("tess", "YAF", "angry", 1),
            ("turevdb", "1", "angry", 3),
            ("turevdb", "2", "sad", 1),
            ("emodb", "03", "fear", 1),
        ]
    )
    sets = corpus_label_sets([c.corpus for c in clips], [c.label for c in clips])
    assert sets == {
        "emodb": frozenset({"fear"}),
        "tess": frozenset({"angry", "surprise"}),
        "turevdb": frozenset({"angry", "sad"}),
    }
    with pytest.raises(ValueError, match="corpora"):
        corpus_label_sets(["tess"], ["angry", "sad"])


def test_label_masks_mark_each_clips_corpus_labels() -> None:
    sets = {"a": frozenset({0, 2}), "b": frozenset({1})}
    masks = label_masks(["b", "a", "a"], sets, 4)
    np.testing.assert_array_equal(masks, [[0, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0]])
    assert masks.dtype == np.float32
    with pytest.raises(ValueError, match="'c'"):
        label_masks(["a", "c"], sets, 4)


def test_balance_gives_every_speaker_or_corpus_the_same_total_weight() -> None:
    # TESS-like: two voices, many clips; EmoDB-like: three voices, few clips each.
    clips = _clips(
        [
            ("tess", "OAF", "angry", 40),
            ("tess", "YAF", "sad", 35),
            ("emodb", "03", "angry", 3),
            ("emodb", "08", "sad", 5),
            ("emodb", "09", "sad", 2),
        ]
    )
    idx = np.arange(len(clips))
    assert balance_groups(clips, idx, "none") is None
    for balance, n_groups in (("speaker", 5), ("corpus", 2)):
        groups = balance_groups(clips, idx, balance)
        assert groups is not None
        weights = balance_weights(groups)
        totals = {g: weights[groups == g].sum() for g in set(groups)}
        assert len(totals) == n_groups
        np.testing.assert_allclose(list(totals.values()), len(clips) / n_groups)
        assert weights.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="balance"):
        balance_groups(clips, idx, "label")


def test_balance_multiplies_class_weights_and_keeps_mean_one() -> None:
    class_w = np.array([2.0, 2.0, 0.5, 0.5, 0.5, 0.5])
    balance = balance_weights(np.array(["a", "a", "b", "b", "b", "b"]))
    combined = combine_weights(class_w, balance)
    assert combined.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(
        combined / combined[0], class_w * balance / (class_w[0] * balance[0])
    )


def test_fit_arguments_follow_the_folds_training_clips_and_views() -> None:
    clips = _clips(
        [
            ("full", "s1", "angry", 2),
            ("full", "s2", "surprise", 2),
            ("four", "t1", "angry", 2),
            ("four", "t2", "sad", 2),
        ]
    )
    labels = ["angry", "sad", "surprise"]
    y = np.array([labels.index(c.label) for c in clips])
    # "full"'s sad clips are all in the held-out part: "full" has no sad in this fold.
    train_idx = np.arange(8)
    fit_idx, val_idx = np.array([0, 2, 4, 6]), np.array([1, 3, 5, 7])
    config = TrainConfig(mask_absent_labels=True, balance="corpus")
    out = fit_arguments(clips, y, train_idx, fit_idx, val_idx, n_views=3, n_labels=3, config=config)
    assert out["fit_masks"] is not None and out["val_masks"] is not None
    assert out["fit_groups"] is not None
    full, four = [1, 0, 1], [1, 1, 0]
    np.testing.assert_array_equal(out["fit_masks"], [full, full, four, four] * 3)
    np.testing.assert_array_equal(out["val_masks"], [full, full, four, four])
    assert list(out["fit_groups"]) == ["full", "full", "four", "four"] * 3
    plain = fit_arguments(
        clips, y, train_idx, fit_idx, val_idx, n_views=3, n_labels=3, config=TrainConfig()
    )
    assert plain == {"fit_masks": None, "val_masks": None, "fit_groups": None}


def test_both_options_are_off_by_default_and_recipes_are_unchanged() -> None:
    assert TrainConfig().mask_absent_labels is False
    assert TrainConfig().balance == "none"
    with pytest.raises(ValueError, match="balance"):
        TrainConfig(balance="voice")
    # The accurate model's saved configuration predates the options: its recipe is what it
    # saved, plus the two keys, off. The models trained since save both keys.
    saved = {
        file: json.loads((MODELS / f"{file}.train.json").read_text(encoding="utf-8"))["config"]
        for file in ("ser-default", "ser-fast", "ser-accurate")
    }
    accurate = RECIPES["accurate"].config.to_dict()
    added = {k: v for k, v in accurate.items() if k not in saved["ser-accurate"]}
    assert added == {"mask_absent_labels": False, "balance": "none"}
    assert {k: v for k, v in accurate.items() if k in saved["ser-accurate"]} == saved[
        "ser-accurate"
    ]
    paper = RECIPES["paper"].config
    assert (paper.mask_absent_labels, paper.balance) == (False, "none")
    for recipe, file in (("default", "ser-default"), ("fast", "ser-fast")):
        assert TrainConfig(**saved[file]).to_dict() == RECIPES[recipe].config.to_dict()
