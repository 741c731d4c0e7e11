"""``ser-train --protocols loco``: a held-out corpus is scored over its own labels, and a model
card names every pretrained encoder's licence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service import contract
from service.features import get_feature_set
from trainer.card import _encoder_licence
from trainer.config import TrainConfig
from trainer.corpora import Clip
from trainer.pipeline import evaluate_protocol


@pytest.mark.slow
def test_loco_scores_each_held_out_corpus_over_its_own_labels() -> None:
    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "neutral", "sad"]
    clips, rows, y = [], [], []
    # Corpus "a" has all four labels; corpus "b" only angry and sad, like a 4-of-7 corpus.
    for corpus, present in (("a", labels), ("b", ["angry", "sad"])):
        for i in range(80):
            label = present[i % len(present)]
            index = labels.index(label)
            rows.append(rng.normal(3.0 * index, 0.3, size=6))
            y.append(index)
            clips.append(Clip(Path(f"{corpus}{i}.wav"), label, f"{corpus}:{i % 4}", corpus))
    views: dict[str | None, np.ndarray] = {None: np.array(rows, dtype=np.float32)}
    config = TrainConfig(architecture="mlp", hidden=(16,), dropout=0.0, epochs=30, batch_size=16)
    result = evaluate_protocol("loco", views, np.array(y), clips, labels, config=config)
    assert set(result["summary"]) == {"a", "b"}
    held_out_b = result["folds"]["b"]
    # Scored over b's own two labels: no recall reported for labels b does not have.
    assert held_out_b["labels"] == ["angry", "sad"]
    assert set(held_out_b["per_class_recall"]) == {"angry", "sad"}
    assert result["folds"]["a"]["labels"] == labels
    # The classes are far apart: every held-out corpus is recognised, not guessed.
    assert held_out_b["unweighted_accuracy"] > 0.9


def test_a_card_names_the_licence_of_every_pretrained_encoder() -> None:
    whisper = get_feature_set("speech-stats-v2+whisper-l23-int8").to_dict()
    ge2e = get_feature_set("speech-stats-v2+ge2e-int8").to_dict()
    whisper_lines = _encoder_licence({contract.KEY_FEATURE_CONFIG: json.dumps(whisper)})
    assert any("LICENSE-whisper" in line and "OpenAI" in line for line in whisper_lines)
    ge2e_lines = _encoder_licence({contract.KEY_FEATURE_CONFIG: json.dumps(ge2e)})
    assert any("LICENSE-resemblyzer" in line for line in ge2e_lines)
    stats = get_feature_set("speech-stats-v2").to_dict()
    assert _encoder_licence({contract.KEY_FEATURE_CONFIG: json.dumps(stats)}) == []


def test_the_card_leads_loco_with_the_mean_over_corpora_and_names_their_languages() -> None:
    from trainer.card import LANGUAGES, results_table

    def summary(ua: float) -> dict[str, float]:
        return {
            "folds": 1,
            "unweighted_accuracy": ua,
            "unweighted_accuracy_std": 0.0,
            "accuracy": ua,
            "macro_f1": ua,
        }

    table = results_table({"loco": {"summary": {"emodb": summary(0.8), "tess": summary(0.4)}}})
    assert "| loco | **mean of the 2 corpora** | 2 | **60.0%** | | |" in table
    assert set(LANGUAGES) == {"tess", "ravdess", "emodb", "emovo", "turevdb"}
