"""Training and scoring one system on one fold, as the trainer trains: the accuracy
benchmark's core, shared with the studies in ``experiments/``.

A system is a :class:`trainer.recipes.Recipe`: the product's, or a variant built as an object
(``dataclasses.replace``); nothing here looks a recipe or a feature set up by name.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    clips: Sequence[Clip] | None = None,
) -> dict[str, Any]:
    """Train on train_idx (plus augmented copies) as the trainer trains a fold, return test
    probabilities (calibrated and raw; a fused recipe's raw output is its networks' average).

    ``y`` holds each clip's index in ``labels``; ``clips`` (default: the features' own) are
    the same clips, labelled as ``y`` labels them: the trainer reads their speakers (for the
    validation split) and corpora (for per-corpus label masks and balancing).
    """
    from trainer.network import predict_proba
    from trainer.pipeline import fusion_columns, train_fold

    config = replace(system.config, seed=seed)
    views: dict[str | None, np.ndarray] = {None: feats.get(system.feature_set)}
    for aug in config.augmentations:
        views[aug] = feats.get(system.feature_set, aug)
    trained = train_fold(
        views,
        y,
        feats.clips if clips is None else clips,
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


def restrict(
    outputs: dict[str, np.ndarray], labels: Sequence[str], own: Sequence[str]
) -> dict[str, np.ndarray]:
    """One fold's outputs over the test corpus's own labels only: columns ``own`` of
    ``labels`` (in that order), probabilities renormalised over them, so the answer is the
    best of the labels the corpus has and a label it lacks cannot be predicted."""
    columns = [list(labels).index(label) for label in own]
    out = {}
    for kind, values in outputs.items():
        kept = values[:, columns]
        if kind != "scores":  # probabilities; decision values are compared as they are
            kept = kept / np.maximum(kept.sum(axis=1, keepdims=True), 1e-12)
        out[kind] = kept
    return out


def restrict_each(
    outputs: dict[str, np.ndarray], labels: Sequence[str], own: Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    """Each clip's outputs over its own corpus's labels ``own[i]``, all ``labels`` kept as
    columns: another label gets probability 0 (the rest renormalised) or score ``-inf``, so it
    is never the answer; for a test set mixing corpora with different label sets."""
    mask = np.array([[label in set(mine) for label in labels] for mine in own], dtype=bool)
    out = {}
    for kind, values in outputs.items():
        if kind == "scores":
            out[kind] = np.where(mask, values, -np.inf)
        else:
            kept = values * mask
            out[kind] = kept / np.maximum(kept.sum(axis=1, keepdims=True), 1e-12)
    return out


def merge_labels(
    outputs: dict[str, np.ndarray], labels: Sequence[str], source: str, target: str
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Outputs with label ``source`` counted as ``target`` (RAVDESS "calm" as "neutral"):
    probabilities added, decision values' maximum kept (the same answer as taking the argmax
    and then renaming); returns the outputs and the labels without ``source``."""
    i, j = list(labels).index(source), list(labels).index(target)
    keep = [k for k in range(len(labels)) if k != i]
    out = {}
    for kind, values in outputs.items():
        merged = values.copy()
        if kind == "scores":
            merged[:, j] = np.maximum(values[:, i], values[:, j])
        else:
            merged[:, j] = values[:, i] + values[:, j]
        out[kind] = merged[:, keep]
    return out, [labels[k] for k in keep]


def score(
    probs: dict[str, np.ndarray],
    y_true: np.ndarray,
    labels: list[str],
    *,
    own: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of one fold's outputs ``(clips, labels)``: a network's ``raw`` and
    ``calibrated`` probabilities, or a reference's decision values (``scores``: no ECE).

    With ``own`` (the test corpus's labels), the answer is the argmax over those labels only
    and the metrics are over them (UA = the mean recall of the corpus's own labels).
    """
    if own is not None:
        probs = restrict(probs, labels, own)
        mapping = [list(own).index(labels[k]) for k in y_true]
        y_true, labels = np.asarray(mapping, dtype=np.int64), list(own)
    decisive = probs["raw"] if "raw" in probs else probs["scores"]
    m = classification_metrics(
        [labels[i] for i in y_true], [labels[i] for i in decisive.argmax(1)], labels
    )
    m["ece_raw"] = expected_calibration_error(probs["raw"], y_true) if "raw" in probs else None
    m["ece"] = (
        expected_calibration_error(probs["calibrated"], y_true) if "calibrated" in probs else None
    )
    return m


def pooled(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Folds and seeds of one (protocol, system): means, spreads, summed confusion (ECE
    ``None`` for a reference without probabilities)."""
    out: dict[str, Any] = {"runs": len(metrics)}
    for key in ("unweighted_accuracy", "accuracy", "macro_f1", "ece_raw", "ece"):
        if any(m.get(key) is None for m in metrics):
            out[key] = out[f"{key}_std"] = None
            continue
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


def over_seeds(runs: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Folds of one (protocol, system) over every seed: :func:`pooled`, plus each seed's UA
    (the mean over its folds) and their spread (``seed_min``, ``seed_max``)."""
    out = pooled([m for _, m in runs])
    by_seed: dict[int, list[float]] = {}
    for seed, m in runs:
        by_seed.setdefault(seed, []).append(m["unweighted_accuracy"])
    out["seeds"] = {str(seed): float(np.mean(v)) for seed, v in sorted(by_seed.items())}
    out["seed_min"], out["seed_max"] = min(out["seeds"].values()), max(out["seeds"].values())
    return out


def mean_over(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean of several protocols' figures for one system (e.g. the five held-out corpora),
    seed by seed: UA, accuracy and macro-F1 as the mean over ``rows`` per seed, then over the
    seeds; ``unweighted_accuracy_std`` is the spread over ``rows``, ``seed_min``/``seed_max``
    the spread of the per-seed means."""
    seeds = sorted(set.intersection(*(set(r["seeds"]) for r in rows)), key=int)
    per_seed = [float(np.mean([r["seeds"][s] for r in rows])) for s in seeds]
    out: dict[str, Any] = {
        "parts": len(rows),
        "unweighted_accuracy": float(np.mean(per_seed)),
        "unweighted_accuracy_std": float(np.std([r["unweighted_accuracy"] for r in rows])),
        "seeds": dict(zip(seeds, per_seed, strict=True)),
        "seed_min": min(per_seed),
        "seed_max": max(per_seed),
    }
    for key in ("accuracy", "macro_f1", "ece"):
        values = [r.get(key) for r in rows]
        known = [float(v) for v in values if v is not None]
        out[key] = float(np.mean(known)) if len(known) == len(values) else None
    return out


def ravdess_folds(clips: list[Clip]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Six folds of four held-out RAVDESS actors: ``(name, train indices, test indices)``.

    The test clips are the held-out actors'; training is everything else in ``clips`` (the
    other RAVDESS actors, and any other corpus's clips).
    """
    actors = np.array([int(c.speaker.split(":")[1]) if c.corpus == "ravdess" else 0 for c in clips])
    folds = []
    for start in range(1, 25, 4):
        held = (actors >= start) & (actors < start + 4)
        folds.append((f"actors {start}-{start + 3}", np.flatnonzero(~held), np.flatnonzero(held)))
    return folds
