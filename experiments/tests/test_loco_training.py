"""The leave-one-corpus-out study scores a held-out corpus on its own labels, applies its
declared adoption rule as written, and trains the variants it names (no corpora)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.loco_training import VARIANTS, held_out_scores, report
from trainer.recipes import DEFAULT


def test_the_variants_are_the_default_recipe_without_augmentation_and_one_network() -> None:
    plain = VARIANTS["plain"]
    assert plain.augmentations == () and plain.ensemble == 1
    assert plain.hidden == DEFAULT.config.hidden and plain.class_weights
    assert not plain.mask_absent_labels and plain.balance == "none"
    assert VARIANTS["mask+balance-corpus"].mask_absent_labels
    assert VARIANTS["mask+balance-corpus"].balance == "corpus"
    assert VARIANTS["balance-speaker"].balance == "speaker"


def test_a_held_out_corpus_is_scored_among_its_own_labels() -> None:
    labels = ["angry", "happy", "sad", "surprise"]
    own = ["angry", "happy", "sad"]
    # Clip 0 (angry) puts surprise first but angry second: right among its corpus's labels,
    # wrong among all of them.
    probs = np.array(
        [
            [0.3, 0.1, 0.1, 0.5],
            [0.1, 0.6, 0.1, 0.2],
            [0.5, 0.1, 0.3, 0.1],
            [0.1, 0.1, 0.7, 0.1],
        ]
    )
    scores = held_out_scores(probs, np.array([0, 1, 2, 2]), labels, own)
    assert scores["ua"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert scores["accuracy"] == pytest.approx(0.75)
    assert scores["ua_any_label"] == pytest.approx((0 + 1 + 0.5) / 3)
    assert set(scores["per_class_recall"]) == set(own)


def _rows(variant: str, table: dict[int, list[float]]) -> list[dict]:
    corpora = ("tess", "ravdess", "emodb", "emovo", "turevdb")
    return [
        {"variant": variant, "seed": seed, "held_out": corpus, "ua": ua}
        for seed, values in table.items()
        for corpus, ua in zip(corpora, values, strict=True)
    ]


def test_the_declared_rule_decides_each_variant() -> None:
    plain = {42: [0.40, 0.30, 0.50, 0.30, 0.40], 43: [0.42, 0.30, 0.50, 0.30, 0.40]}

    def shifted(deltas: dict[int, list[float]]) -> dict[int, list[float]]:
        return {s: [p + d for p, d in zip(plain[s], deltas[s], strict=True)] for s in plain}

    rows = _rows("plain", plain)
    # +1.2 points on both seeds, no corpus worse than -1: adopted.
    rows += _rows("good", shifted({s: [0.02, 0.02, 0.01, 0.01, 0.0] for s in plain}))
    # +2 points on average, but all on seed 42.
    rows += _rows("one-seed", shifted({42: [0.05] * 5, 43: [-0.01] * 5}))
    # +0.6 points: better on both seeds, not by enough.
    rows += _rows("small", shifted({s: [0.006] * 5 for s in plain}))
    # +2.2 points, but TurEV-DB loses 4.
    rows += _rows("one-corpus", shifted({s: [0.05, 0.05, 0.03, 0.03, -0.04] for s in plain}))
    rows += _rows("partial", {42: plain[42]})
    verdicts = {
        line.split(":")[0][2:]: line.rsplit(": ", 1)[1]
        for line in report(rows).splitlines()
        if line.startswith("- ")
    }
    assert verdicts == {
        "good": "ADOPT",
        "one-seed": "do not adopt",
        "small": "do not adopt",
        "one-corpus": "do not adopt",
        "partial": "incomplete",
    }
