"""The accuracy benchmark's folds and its measured-vs-target verdicts (no corpora needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.accuracy_report import targets_table
from bench.scoring import pooled, ravdess_folds
from trainer.corpora import Clip


def _row(ua: float) -> dict[str, float]:
    return {"unweighted_accuracy": ua}


def test_ravdess_folds_hold_out_four_actors_each_and_cover_everyone() -> None:
    clips = [
        Clip(Path(f"a{a}_{i}.flac"), "angry", f"ravdess:{a:02d}", "ravdess")
        for a in range(1, 25)
        for i in range(3)
    ]
    folds = ravdess_folds(clips)
    assert [name for name, _, _ in folds][0] == "actors 1-4" and len(folds) == 6
    held_out = np.concatenate([test for _, _, test in folds])
    assert sorted(held_out) == list(range(len(clips)))  # every clip tested exactly once
    for _, train, test in folds:
        train_actors = {clips[i].speaker for i in train}
        test_actors = {clips[i].speaker for i in test}
        assert len(test_actors) == 4 and not train_actors & test_actors


def test_targets_table_reports_shortfalls_and_noise_cost() -> None:
    results = {
        "3 RAVDESS actor-independent, 8 classes": {"ours": _row(0.60), "paper": _row(0.34)},
        "2 TESS cross-speaker": {"ours": _row(0.93), "paper": _row(0.49)},
        "3 RAVDESS actor-independent, 7 labels": {"ours": _row(0.55), "paper": _row(0.40)},
        "6 RAVDESS 7 labels + white@10 dB": {"ours": _row(0.52), "paper": _row(0.30)},
        "6 RAVDESS 7 labels + babble@10 dB": {"ours": _row(0.45), "paper": _row(0.31)},
    }
    table = targets_table(results, ["ours", "paper"])
    rows = {line.split(" | ")[0]: line for line in table.splitlines()}
    ravdess = next(v for k, v in rows.items() if "8 classes" in k)
    assert "60.0 | 34.0" in ravdess and "**no**, 16.0 points short" in ravdess
    assert next(v for k, v in rows.items() if "TESS cross-speaker" in k).endswith("| yes |")
    white = next(v for k, v in rows.items() if "white" in k)
    assert "-3.0 points" in white and white.endswith("| yes |")
    babble = next(v for k, v in rows.items() if "babble" in k)
    assert "-10.0 points" in babble and "5.0 points more than allowed" in babble
    assert "not measured" not in white
    assert "not measured" in targets_table({}, ["ours", "paper"])


def test_targets_table_judges_each_system_but_the_paper() -> None:
    results = {
        "3 RAVDESS actor-independent, 8 classes": {
            "fast": _row(0.58),
            "accurate": _row(0.80),
            "paper": _row(0.34),
        },
        "3 RAVDESS actor-independent, 7 labels": {"fast": _row(0.55), "accurate": _row(0.60)},
        "6 RAVDESS 7 labels + white@10 dB": {"fast": _row(0.52), "accurate": _row(0.50)},
    }
    table = targets_table(results, ["paper", "fast", "accurate"])
    rows = {line.split(" | ")[0]: line for line in table.splitlines()}
    ravdess = next(v for k, v in rows.items() if "8 classes" in k)
    assert "34.0 | 58.0 | 80.0" in ravdess
    assert ravdess.endswith("| fast: **no**, 18.0 points short; accurate: yes |")
    white = next(v for k, v in rows.items() if "white" in k)
    assert white.endswith("| fast: yes; accurate: **no**, costs 5.0 points more than allowed |")
    assert "paper:" not in table


def test_pooled_sums_confusions_and_averages_folds() -> None:
    labels = ["angry", "sad"]
    fold_a = {
        "unweighted_accuracy": 1.0,
        "accuracy": 1.0,
        "macro_f1": 1.0,
        "ece_raw": 0.1,
        "ece": 0.05,
        "labels": labels,
        "confusion": [[2, 0], [0, 2]],
    }
    fold_b = {
        "unweighted_accuracy": 0.5,
        "accuracy": 0.5,
        "macro_f1": 0.33,
        "ece_raw": 0.3,
        "ece": 0.15,
        "labels": labels,
        "confusion": [[2, 0], [2, 0]],
    }
    out = pooled([fold_a, fold_b])
    assert out["unweighted_accuracy"] == 0.75 and out["unweighted_accuracy_std"] == 0.25
    assert out["confusion"] == [[4, 0], [2, 2]]
    assert out["per_class_recall"] == {"angry": 1.0, "sad": 0.5}


def test_protocol_selection_trains_only_the_chosen_folds(monkeypatch, tmp_path) -> None:
    """--protocols cross-corpus trains the two cross-corpus folds and nothing else."""
    import argparse

    import bench.accuracy as accuracy

    labels = ["angry", "happy", "neutral", "sad"]
    tess = [
        Clip(Path(f"t{s}_{label}_{i}.flac"), label, f"tess:{s}", "tess")
        for s in ("OAF", "YAF")
        for label in labels
        for i in range(2)
    ]
    rav = [
        Clip(Path(f"r{a}_{label}.flac"), label, f"ravdess:{a:02d}", "ravdess")
        for a in range(1, 25)
        for label in labels
    ]

    class FakeFeatures:
        def __init__(self, clips: list[Clip], **_: object) -> None:
            self.clips = clips

        def get(self, *_: object, **__: object) -> np.ndarray:
            return np.zeros((len(self.clips), 3), dtype=np.float32)

    trained: list[int] = []

    def fake_train_predict(system, feats, train_idx, test_sets, labels, y, *, seed):
        trained.append(len(train_idx))
        uniform = {k: np.full((len(v), len(labels)), 1 / len(labels)) for k, v in test_sets.items()}
        return {k: {"raw": p, "calibrated": p} for k, p in uniform.items()}

    monkeypatch.setattr(accuracy, "read_tess", lambda root: tess)
    monkeypatch.setattr(accuracy, "read_ravdess", lambda root, native_labels=False: rav)
    monkeypatch.setattr(accuracy, "Features", FakeFeatures)
    monkeypatch.setattr(accuracy, "train_predict", fake_train_predict)
    args = argparse.Namespace(
        data_root=tmp_path,
        cache_dir=tmp_path,
        workers=1,
        systems=["paper"],
        seeds=[1, 2],
        protocols=["cross-corpus"],
        quick=False,
        skip_pooled=False,
    )
    results = accuracy.run(args)
    assert sorted(results) == ["4 cross-corpus RAVDESS -> TESS", "4 cross-corpus TESS -> RAVDESS"]
    assert sorted(trained) == [len(tess)] * 2 + [len(rav)] * 2  # two folds, two seeds
    assert results["4 cross-corpus TESS -> RAVDESS"]["paper"]["unweighted_accuracy"] == 0.25


def test_the_systems_are_the_product_recipes_unless_a_study_passes_its_own() -> None:
    from dataclasses import replace

    from bench.accuracy import build_parser
    from trainer.recipes import RECIPES

    parser = build_parser(RECIPES, "python -m bench.accuracy")
    assert parser.parse_args([]).systems == ["paper", "default", "accurate"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--systems", "speech-stats-v2-voices"])
    default = RECIPES["default"]
    variant = replace(default, name="mixup", config=replace(default.config, mixup=0.2))
    study = build_parser({**RECIPES, variant.name: variant}, "python -m experiments.ablation")
    assert study.parse_args(["--systems", "default", "mixup"]).systems == ["default", "mixup"]


@pytest.mark.slow
def test_a_recipe_object_trains_on_a_fold_and_scores_its_test_sets(tmp_path) -> None:
    """What every protocol does with a system: features of the recipe's own feature set
    object (and its augmented copies), one fold trained as the trainer trains, test sets
    scored; a variant built with ``replace`` needs no registering."""
    from dataclasses import replace

    import soundfile as sf

    from bench.scoring import Features, score, train_predict
    from tests.helpers import tone
    from trainer.recipes import RECIPES

    paper = RECIPES["paper"]
    variant = replace(
        paper,
        name="tiny",
        config=replace(paper.config, hidden=(8,), epochs=3, augmentations=("white@20",)),
    )
    labels = ["angry", "sad"]
    clips = []
    for speaker in range(4):
        for label, freq in zip(labels, (300.0, 120.0), strict=True):
            for i in range(4):
                path = tmp_path / f"{speaker}-{label}-{i}.wav"
                sf.write(path, tone(freq=freq * (1 + 0.02 * i), seconds=0.3, seed=i), 16_000)
                clips.append(Clip(path, label, f"c:{speaker}", "c"))
    feats = Features(
        clips, cache_dir=tmp_path / "cache", workers=1, babble_train=(), babble_test=()
    )
    y = np.array([labels.index(c.label) for c in clips])
    train = np.flatnonzero([c.speaker != "c:3" for c in clips])
    test = np.flatnonzero([c.speaker == "c:3" for c in clips])
    x = feats.get(variant.feature_set)
    assert x.shape == (len(clips), 40) and feats.get(paper.feature_set) is x
    out = train_predict(variant, feats, train, {"test": x[test]}, labels, y, seed=1)
    assert out["temperature"] > 0
    for kind in ("raw", "calibrated"):
        assert out["test"][kind].shape == (len(test), 2)
        np.testing.assert_allclose(out["test"][kind].sum(axis=1), 1.0, atol=1e-5)
    assert np.sum(score(out["test"], y[test], labels)["confusion"]) == len(test)
    # The clean features and the recipe's one augmented copy, each extracted once.
    assert len(list((tmp_path / "cache").iterdir())) == 2
