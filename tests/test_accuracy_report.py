"""The accuracy benchmark's folds and its measured-vs-target verdicts (no corpora needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.accuracy_report import (
    LOCO_MEAN,
    POOLED_ALL,
    RAV7,
    RAV8,
    REFERENCE,
    TESS_XS,
    column_order,
    loco_key,
    noise_cost,
    noise_key,
    targets_table,
    write_report,
)
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


def _seeded(*uas: float) -> dict[str, Any]:
    """A result row over seeds 42, 43, ...: the mean and each seed's UA."""
    seeds = {str(42 + i): ua for i, ua in enumerate(uas)}
    return {
        "unweighted_accuracy": float(np.mean(uas)),
        "seeds": seeds,
        "seed_min": min(uas),
        "seed_max": max(uas),
    }


def test_targets_table_reports_shortfalls_and_noise_cost() -> None:
    results = {
        LOCO_MEAN: {"ours": _seeded(0.62, 0.58), "paper": _seeded(0.30, 0.31)},
        RAV8: {"ours": _row(0.60), "paper": _row(0.34)},
        TESS_XS: {"ours": _row(0.93), "paper": _row(0.49)},
        RAV7: {"ours": _seeded(0.55, 0.57), "paper": _seeded(0.40, 0.40)},
        noise_key("white@10"): {"ours": _seeded(0.52, 0.53), "paper": _seeded(0.30, 0.30)},
        noise_key("babble@10"): {"ours": _seeded(0.45, 0.47), "paper": _seeded(0.31, 0.31)},
    }
    table = targets_table(results, ["paper", "ours"])
    rows = {line.split(" | ")[0]: line for line in table.splitlines()}
    loco = next(v for k, v in rows.items() if "LOCO" in k)
    assert "UA >= 60%" in loco and "30.5 (30.0-31.0) | 60.0 (58.0-62.0)" in loco
    assert loco.endswith("| yes |")  # the mean over seeds is judged
    ravdess = next(v for k, v in rows.items() if "8 classes" in k)
    assert "34.0 | 60.0" in ravdess and "**no**, 16.0 points short" in ravdess
    assert next(v for k, v in rows.items() if "TESS cross-speaker" in k).endswith("| yes |")
    white = next(v for k, v in rows.items() if "white" in k)
    assert "| 10.0 points | 3.5 points (3.0 to 4.0) |" in white and white.endswith("| yes |")
    babble = next(v for k, v in rows.items() if "babble" in k)
    assert "| 9.0 points | 10.0 points |" in babble and "5.0 points more than allowed" in babble
    assert "not measured" not in table
    assert "not measured" in targets_table({}, ["ours", "paper"])


def test_noise_cost_is_taken_seed_by_seed() -> None:
    results = {
        RAV7: {"ours": _seeded(0.60, 0.50)},
        noise_key("white@10"): {"ours": _seeded(0.58, 0.40)},
    }
    cost = noise_cost(results, "white@10", "ours")
    assert cost is not None
    assert cost["mean"] == pytest.approx(6.0) and (cost["min"], cost["max"]) == pytest.approx(
        (2.0, 10.0)
    )
    row = next(line for line in targets_table(results, ["ours"]).splitlines() if "white" in line)
    assert "| 6.0 points (2.0 to 10.0) |" in row and "1.0 points more than allowed" in row
    assert noise_cost(results, "babble@10", "ours") is None


def test_targets_table_judges_each_system_but_the_paper_and_the_reference() -> None:
    results = {
        RAV8: {
            "fast": _row(0.58),
            "accurate": _row(0.80),
            "paper": _row(0.34),
            REFERENCE: _row(0.50),
        },
        RAV7: {"fast": _row(0.55), "accurate": _row(0.60), REFERENCE: _row(0.5)},
        noise_key("white@10"): {"fast": _row(0.52), "accurate": _row(0.50)},
    }
    table = targets_table(results, column_order(["fast", REFERENCE, "paper", "accurate"]))
    assert table.splitlines()[0] == ("| target | paper | fast | accurate | eGeMAPS + SVM | met? |")
    rows = {line.split(" | ")[0]: line for line in table.splitlines()}
    ravdess = next(v for k, v in rows.items() if "8 classes" in k)
    assert "34.0 | 58.0 | 80.0 | 50.0" in ravdess
    assert ravdess.endswith("| fast: **no**, 18.0 points short; accurate: yes |")
    white = next(v for k, v in rows.items() if "white" in k)
    assert white.endswith("| fast: yes; accurate: **no**, costs 5.0 points more than allowed |")
    assert "paper:" not in table and f"{REFERENCE}:" not in table


def _full(ua: float, labels: list[str]) -> dict[str, Any]:
    n = len(labels)
    return {
        **_seeded(ua),
        "unweighted_accuracy_std": 0.01,
        "accuracy": ua,
        "macro_f1": ua,
        "ece_raw": 0.2,
        "ece": 0.05,
        "runs": 1,
        "labels": labels,
        "confusion": np.eye(n, dtype=int).tolist(),
        "per_class_recall": dict.fromkeys(labels, 1.0),
    }


def test_the_report_leads_with_loco_and_judges_the_targets(tmp_path) -> None:
    seven = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    four = ["angry", "happy", "neutral", "sad"]
    corpora = ["tess", "ravdess", "emodb", "emovo", "turevdb"]
    results: dict[str, Any] = {
        loco_key(c): {
            "paper": _full(0.2, four if c == "turevdb" else seven),
            "default": _full(0.5, four if c == "turevdb" else seven),
            REFERENCE: {**_full(0.4, seven), "ece": None, "ece_raw": None},
        }
        for c in corpora
    }
    results[LOCO_MEAN] = {"paper": _seeded(0.2), "default": _seeded(0.5), REFERENCE: _seeded(0.4)}
    results[RAV8] = {"default": _full(0.8, [*seven, "calm"])}
    results[POOLED_ALL] = {"default": _full(0.7, seven)}
    args = argparse.Namespace(
        systems=["default", "paper", REFERENCE],
        seeds=[42],
        out="report",
        out_dir=tmp_path,
        corpora=corpora,
        quick=False,
        reference_note="",
    )
    path = write_report(results, args, 60.0, command="python -m bench.accuracy", descriptions={})
    text = path.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Leave one corpus out", "## Targets, measured"]
    loco = text.split("## Leave one corpus out")[1].split("## Targets")[0]
    table = [line for line in loco.splitlines() if line.startswith("|")]
    assert table[0] == "| held-out corpus (its labels) | paper | default | eGeMAPS + SVM |"
    assert "| TurEV-DB (4) | 20.0 | 50.0 | 40.0 |" in table
    assert table[-1] == "| **mean** | **20.0** | **50.0** | **40.0** |"
    targets = text.split("## Targets, measured")[1].split("## ")[0]
    assert (
        "LOCO mean over the five corpora: UA >= 60% | 20.0 | 50.0 | 40.0 | **no**, 10.0" in targets
    )
    assert "8 classes: UA >= 76% | n/a | 80.0 | n/a | yes |" in targets
    assert "never served: openSMILE's licence permits research use only" in text
    assert "| default | 0.200 | 0.050 |" in text  # calibration on the pooled folds
    lowered = text.lower()
    assert "issue" not in lowered and "session" not in lowered
    assert not (tmp_path / "img").exists()  # images only for the full report
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["results"][LOCO_MEAN]["default"]["unweighted_accuracy"] == 0.5


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


def test_the_systems_are_the_product_recipes_unless_a_study_passes_its_own() -> None:
    from dataclasses import replace

    from bench.accuracy import build_parser
    from trainer.recipes import RECIPES

    parser = build_parser(RECIPES, "python -m bench.accuracy")
    assert parser.parse_args([]).systems == ["paper", "fast", "default", "accurate"]
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
