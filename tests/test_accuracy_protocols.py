"""The accuracy benchmark's protocols on synthetic five-corpus data (no audio, no training):
which clips each fold trains and tests on, and scoring over the test corpus's own labels."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bench.accuracy as accuracy
import bench.protocols as bench_protocols
from bench.accuracy_report import (
    LOCO_MEAN,
    PAPER_PROTOCOL,
    POOLED_ALL,
    RAV7,
    RAV8,
    TESS_XS,
    loco_key,
    noise_key,
    pooled_key,
)
from bench.scoring import merge_labels, restrict, restrict_each, score
from trainer.corpora import Clip
from trainer.evaluate import corpus_folds, speaker_group_folds

SEVEN = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
#: Each synthetic corpus's speakers and labels, shaped like the real ones.
LAYOUT = {
    "tess": (["OAF", "YAF"], SEVEN),
    "ravdess": ([f"{a:02d}" for a in range(1, 25)], [*SEVEN, "calm"]),
    "emodb": (["03", "08", "09", "10"], [x for x in SEVEN if x != "surprise"]),
    "emovo": (["f1", "f2", "m1"], SEVEN),
    "turevdb": (["1157", "1234", "1358"], ["angry", "happy", "neutral", "sad"]),
}


def five_corpora(per_label: int = 2) -> list[Clip]:
    return [
        Clip(Path(f"/{corpus}/{speaker}-{label}-{i}.wav"), label, f"{corpus}:{speaker}", corpus)
        for corpus, (speakers, labels) in LAYOUT.items()
        for speaker in speakers
        for label in labels
        for i in range(per_label)
    ]


def test_loco_folds_hold_out_exactly_one_corpus_each_and_cover_all() -> None:
    clips = five_corpora()
    folds = corpus_folds(clips)
    assert [f.name for f in folds] == sorted(LAYOUT)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(len(clips)))  # every clip tested exactly once
    for fold in folds:
        assert {clips[i].corpus for i in fold.test} == {fold.name}
        assert {clips[i].corpus for i in fold.train} == set(LAYOUT) - {fold.name}
        assert fold.train.size + fold.test.size == len(clips)
    with pytest.raises(ValueError, match="at least two corpora"):
        corpus_folds([c for c in clips if c.corpus == "tess"])


def test_pooled_folds_hold_out_speakers_of_every_corpus_in_each_fold() -> None:
    clips = five_corpora()
    folds = speaker_group_folds(clips, 2)
    assert len(folds) == 2
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(len(clips)))
    for fold in folds:
        train = {clips[i].speaker for i in fold.train}
        test = {clips[i].speaker for i in fold.test}
        assert not train & test
        assert {clips[i].corpus for i in fold.test} == set(LAYOUT)  # every corpus, every fold
        assert len({s for s in test if s.startswith("tess:")}) == 1  # one TESS voice each
    # The same folds in every run, and not the id order (RAVDESS: odd actors are male).
    again = speaker_group_folds(list(clips), 2)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again, strict=True))
    held = {clips[i].speaker for i in folds[0].test if clips[i].corpus == "ravdess"}
    assert {int(s.split(":")[1]) % 2 for s in held} == {0, 1}
    # More folds than TESS voices: TESS sits out of the later folds.
    three = speaker_group_folds(clips, 3)
    assert [any(clips[i].corpus == "tess" for i in f.test) for f in three] == [True, True, False]


def test_scoring_is_over_the_test_corpus_own_labels() -> None:
    """The answer is the best of the held-out corpus's labels: a label it lacks (here the
    network's favourite) can never be predicted, and UA is over its labels only."""
    labels = SEVEN
    own = ["angry", "happy", "neutral", "sad"]  # TurEV-DB
    y = np.array([labels.index(x) for x in ("angry", "happy", "neutral", "sad", "sad")])
    probs = np.full((5, 7), 0.02)
    probs[:, labels.index("surprise")] = 0.6  # not a TurEV-DB label
    probs[np.arange(5), y] = 0.3
    probs[4, labels.index("angry")] = 0.35  # one genuine mistake among its own labels
    outputs = {"raw": probs, "calibrated": probs}
    m = score(outputs, y, labels, own=own)
    assert m["labels"] == own and np.array(m["confusion"]).shape == (4, 4)
    assert m["unweighted_accuracy"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert "surprise" not in m["per_class_recall"]
    unrestricted = score(outputs, y, labels)
    assert unrestricted["unweighted_accuracy"] == 0.0  # surprise every time
    kept = restrict(outputs, labels, own)
    np.testing.assert_allclose(kept["calibrated"].sum(axis=1), 1.0)
    # Decision values (the reference): compared as they are, absent labels never chosen.
    scores = {"scores": np.log(probs)}
    assert score(scores, y, labels, own=own)["unweighted_accuracy"] == m["unweighted_accuracy"]
    assert score(scores, y, labels, own=own)["ece"] is None
    # A test set mixing corpora: each clip over its own corpus's labels.
    each = restrict_each(outputs, labels, [own] * 4 + [labels])
    assert each["raw"][:4, labels.index("surprise")].max() == 0
    assert each["raw"][4].argmax() == labels.index("surprise")


def test_calm_merges_into_neutral_for_the_seven_labels() -> None:
    labels = ["angry", "calm", "neutral"]
    probs = np.array([[0.2, 0.45, 0.35], [0.5, 0.3, 0.2]])
    merged, seven = merge_labels({"raw": probs}, labels, "calm", "neutral")
    assert seven == ["angry", "neutral"]
    np.testing.assert_allclose(merged["raw"], [[0.2, 0.8], [0.5, 0.5]])
    scores, _ = merge_labels({"scores": np.array([[1.0, 3.0, 2.0]])}, labels, "calm", "neutral")
    np.testing.assert_allclose(scores["scores"], [[1.0, 3.0]])


class IndexFeatures:
    """Features whose one column is each clip's position in the full data, so a test matrix
    tells the fake trainer which clips it holds."""

    position: dict[Path, int] = {}

    def __init__(self, clips: list[Clip], **_: object) -> None:
        self.clips = clips

    def get(self, *_: object, **__: object) -> np.ndarray:
        return np.array([[self.position[c.path]] for c in self.clips], dtype=np.float32)


def run_fake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocols: list[str], seeds: list[int]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Clip]]:
    """The runner over synthetic data with a fake trainer that answers each clean clip
    right (while liking best a label the clip's corpus lacks) and every noisy clip "angry"."""
    clips = five_corpora()
    clips8 = clips
    IndexFeatures.position = {c.path: i for i, c in enumerate(clips)}
    calls: list[dict[str, Any]] = []

    def fake_train_predict(system, feats, train_idx, test_sets, labels, y, *, seed, clips):
        calls.append(
            {"train": set(train_idx.tolist()), "labels": list(labels), "seed": seed, "clips": clips}
        )
        out = {}
        for condition, x in test_sets.items():
            rows = x[:, 0].astype(int)
            probs = np.full((len(rows), len(labels)), 0.01)
            for r, i in enumerate(rows):
                truth = clips8[i].label
                if truth == "calm" and "calm" not in labels:
                    truth = "neutral"
                lacks = [
                    k for k, lab in enumerate(labels) if lab not in LAYOUT[clips8[i].corpus][1]
                ]
                if condition != "clean":
                    probs[r, labels.index("angry")] = 0.9
                    continue
                probs[r, labels.index(truth)] = 0.3
                if lacks:
                    probs[r, lacks[0]] = 0.6
            probs /= probs.sum(axis=1, keepdims=True)
            calls[-1].setdefault("tests", {})[condition] = rows.tolist()
            out[condition] = {"raw": probs, "calibrated": probs}
        return out

    monkeypatch.setattr(accuracy, "Features", IndexFeatures)
    monkeypatch.setattr(bench_protocols, "train_predict", fake_train_predict)
    args = argparse.Namespace(
        data_root=tmp_path,
        cache_dir=tmp_path,
        workers=1,
        systems=["paper"],
        seeds=seeds,
        protocols=protocols,
        quick=False,
        reference="none",
    )
    return accuracy.run(args, clips=clips), calls, clips


def test_every_protocol_trains_and_tests_on_what_it_says(monkeypatch, tmp_path) -> None:
    results, calls, clips = run_fake(monkeypatch, tmp_path, list(accuracy.PROTOCOLS), [1])
    everyone = set(range(len(clips)))
    corpus = np.array([c.corpus for c in clips])
    # LOCO: five trainings, each on four corpora, tested on the fifth.
    loco = calls[:5]
    for call, name in zip(loco, sorted(LAYOUT), strict=True):
        test = set(call["tests"]["clean"])
        assert test == set(np.flatnonzero(corpus == name)) and call["train"] == everyone - test
        assert call["labels"] == SEVEN
    # RAVDESS: six folds of four actors, 8 labels, the other corpora in training, noisy sets.
    rav = calls[5:11]
    for call in rav:
        test = set(call["tests"]["clean"])
        actors = {clips[i].speaker for i in test}
        assert len(actors) == 4 and {clips[i].corpus for i in test} == {"ravdess"}
        assert call["train"] == everyone - test and "calm" in call["labels"]
        assert set(call["tests"]) == {"clean", *accuracy.NOISES}
        assert {c.label for c in call["clips"]} >= {"calm"}
    # TESS cross-speaker: one voice held out, the other and the four corpora train.
    for call in calls[11:13]:
        test = set(call["tests"]["clean"])
        assert len({clips[i].speaker for i in test}) == 1
        assert {clips[i].corpus for i in test} == {"tess"} and call["train"] == everyone - test
    # Pooled: two folds over every corpus; the paper's protocol: TESS only.
    for call in calls[13:15]:
        assert {clips[i].corpus for i in call["tests"]["clean"]} == set(LAYOUT)
    paper = calls[15]
    assert {clips[i].corpus for i in paper["train"] | set(paper["tests"]["clean"])} == {"tess"}
    assert len(calls) == 16
    # Scoring over each corpus's own labels: the fake's favourite label is one the corpus
    # lacks, so only restricted answers are right.
    for name in LAYOUT:
        assert results[loco_key(name)]["paper"]["unweighted_accuracy"] == 1.0
        assert results[pooled_key(name)]["paper"]["unweighted_accuracy"] == 1.0
    assert results[loco_key("turevdb")]["paper"]["labels"] == ["angry", "happy", "neutral", "sad"]
    assert results[LOCO_MEAN]["paper"]["unweighted_accuracy"] == 1.0
    assert results[POOLED_ALL]["paper"]["unweighted_accuracy"] == 1.0
    assert results[RAV8]["paper"]["labels"] == sorted([*SEVEN, "calm"])
    assert results[RAV7]["paper"]["labels"] == SEVEN
    assert results[RAV7]["paper"]["per_class_recall"]["neutral"] == 1.0  # calm counted in
    white = results[noise_key("white@10")]["paper"]
    assert white["unweighted_accuracy"] == pytest.approx(1 / 7)
    assert results[TESS_XS]["paper"]["runs"] == 2
    assert results[PAPER_PROTOCOL]["paper"]["runs"] == 1


def test_seeds_give_a_mean_and_a_spread(monkeypatch, tmp_path) -> None:
    results, calls, _ = run_fake(monkeypatch, tmp_path, ["loco"], [1, 2])
    assert Counter(c["seed"] for c in calls) == {1: 5, 2: 5}
    row = results[LOCO_MEAN]["paper"]
    assert set(row["seeds"]) == {"1", "2"} and row["seed_min"] <= row["seed_max"]
    assert results[loco_key("tess")]["paper"]["runs"] == 2


def test_quick_variant_trains_briefly_on_the_same_features() -> None:
    from trainer.recipes import RECIPES

    fast = RECIPES["fast"]
    quick = accuracy.quick_variant(fast)
    assert quick.feature_set is fast.feature_set
    assert quick.config.epochs == accuracy.QUICK_EPOCHS and quick.config.ensemble == 1
    assert quick.config.augmentations == fast.config.augmentations[:1]
    assert fast.config.ensemble == 3  # the recipe itself is untouched
