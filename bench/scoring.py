"""Training and scoring one system on one fold, as the trainer trains: the accuracy
benchmark's core, shared with the studies in ``experiments/``.

A system is a :class:`trainer.recipes.Recipe`: the product's, or a variant built as an object
(``dataclasses.replace``); nothing here looks a recipe or a feature set up by name.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from service.features import FeatureSet, config_fingerprint
from trainer.calibrate import apply_temperature
from trainer.corpora import Clip
from trainer.evaluate import classification_metrics, expected_calibration_error
from trainer.extract import extract_corpus
from trainer.recipes import Recipe

#: What the benchmark trains and tests: a recipe.
System = Recipe


def babble_talkers(tess: list[Clip]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Babble talkers for training copies and for noisy test sets, four each.

    From TESS, so never a RAVDESS test actor; training and test use different words.
    """
    talkers = sorted(c.path for c in tess)
    train = tuple(str(p) for p in talkers[::401][:4])
    test = tuple(str(p) for p in talkers[200::397][:4])
    return train, test


class Features:
    """Feature matrices ``(clips, dim)`` per (feature set, augmentation), aligned to a clip
    list; kept in memory for the run, cached on disk by the trainer."""

    def __init__(
        self,
        clips: list[Clip],
        *,
        cache_dir: Path,
        workers: int,
        babble_train: tuple[str, ...],
        babble_test: tuple[str, ...],
    ) -> None:
        self.clips = clips
        self.index = {c.path: i for i, c in enumerate(clips)}
        self.cache_dir, self.workers = cache_dir, workers
        self.babble = {"train": babble_train, "test": babble_test}
        self._store: dict[tuple[str, str | None, str], np.ndarray] = {}

    def get(
        self, feature_set: FeatureSet, augmentation: str | None = None, babble: str = "train"
    ) -> np.ndarray:
        """Features of every clip, after ``augmentation`` (babble talkers of ``babble``)."""
        # By configuration, not name: two variants may share a name, never a configuration.
        key = (config_fingerprint(feature_set.to_dict()), augmentation, babble)
        if key not in self._store:
            matrix, kept = extract_corpus(
                self.clips,
                feature_set=feature_set,
                cache_dir=self.cache_dir,
                workers=self.workers,
                augmentation=augmentation,
                babble_sources=self.babble[babble]
                if augmentation and "babble" in augmentation
                else (),
            )
            if len(kept) != len(self.clips):
                raise RuntimeError("some clips failed to decode")
            self._store[key] = matrix
        return self._store[key]


def train_predict(
    system: System,
    feats: Features,
    train_idx: np.ndarray,
    test_sets: dict[str, np.ndarray],
    labels: list[str],
    y: np.ndarray,
    *,
    seed: int,
) -> dict[str, Any]:
    """Train on train_idx (plus augmented copies) as the trainer trains a fold, return test
    probabilities (calibrated and raw; a fused recipe's raw output is its networks' average)."""
    from trainer.network import predict_proba
    from trainer.pipeline import fusion_columns, train_fold

    config = replace(system.config, seed=seed)
    views: dict[str | None, np.ndarray] = {None: feats.get(system.feature_set)}
    for aug in config.augmentations:
        views[aug] = feats.get(system.feature_set, aug)
    trained = train_fold(
        views,
        y,
        feats.clips,
        train_idx,
        n_labels=len(labels),
        config=config,
        statistics_columns=fusion_columns(system.feature_set, config),
    )
    out: dict[str, Any] = {"temperature": trained.temperature}
    for name, x_test in test_sets.items():
        raw = predict_proba(trained.model, x_test)
        out[name] = {"raw": raw, "calibrated": apply_temperature(raw, trained.temperature)}
    return out


def score(probs: dict[str, np.ndarray], y_true: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Metrics of one fold's ``raw`` and ``calibrated`` probabilities ``(clips, labels)``."""
    m = classification_metrics(
        [labels[i] for i in y_true], [labels[i] for i in probs["raw"].argmax(1)], labels
    )
    m["ece_raw"] = expected_calibration_error(probs["raw"], y_true)
    m["ece"] = expected_calibration_error(probs["calibrated"], y_true)
    return m


def pooled(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Folds and seeds of one (protocol, system): means, spreads, summed confusion."""
    out: dict[str, Any] = {"runs": len(metrics)}
    for key in ("unweighted_accuracy", "accuracy", "macro_f1", "ece_raw", "ece"):
        values = np.array([m[key] for m in metrics])
        out[key], out[f"{key}_std"] = float(values.mean()), float(values.std())
    labels = metrics[0]["labels"]
    confusion = np.sum([np.array(m["confusion"]) for m in metrics], axis=0)
    support = confusion.sum(1)
    out["per_class_recall"] = {
        lab: float(confusion[i, i] / support[i]) for i, lab in enumerate(labels) if support[i]
    }
    out["labels"], out["confusion"] = labels, confusion.tolist()
    return out


def ravdess_folds(clips: list[Clip]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Six folds of four held-out RAVDESS actors: ``(name, train indices, test indices)``."""
    actors = np.array([int(c.speaker.split(":")[1]) for c in clips])
    folds = []
    for start in range(1, 25, 4):
        held = (actors >= start) & (actors < start + 4)
        folds.append((f"actors {start}-{start + 3}", np.flatnonzero(~held), np.flatnonzero(held)))
    return folds
