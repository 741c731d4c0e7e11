"""The accuracy benchmark's protocols: the data labelled both ways, the systems that train
and answer on a fold (a recipe's networks, or the eGeMAPS + SVM reference), and the folds of
each protocol, scored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench import egemaps
from bench.accuracy_report import (
    PAPER_PROTOCOL,
    POOLED_ALL,
    POOLED_FOLDS,
    QUICK_EPOCHS,
    RAV7,
    RAV8,
    TESS_XS,
    loco_key,
    noise_key,
    pooled_key,
)
from bench.scoring import (
    Features,
    System,
    merge_labels,
    ravdess_folds,
    restrict_each,
    score,
    train_predict,
)
from trainer.corpora import CORPORA, Clip
from trainer.evaluate import corpus_folds, speaker_group_folds, stratified_split

#: Protocol groups; noise rides on the RAVDESS folds' models (selecting it trains them).
PROTOCOLS = ("loco", "ravdess", "noise", "cross-speaker", "pooled", "paper")
#: The noisy test sets of the RAVDESS folds.
NOISES = ("white@10", "babble@10")


@dataclass
class Data:
    """Every clip of the five corpora, labelled two ways, aligned row by row.

    ``clips8`` keeps RAVDESS "calm" as its own label (the 8-class protocol); ``clips7`` counts
    it as neutral (the product's labels). ``own`` is each corpus's labels among the seven.
    """

    clips8: list[Clip]
    clips7: list[Clip] = field(init=False)
    labels8: list[str] = field(init=False)
    labels7: list[str] = field(init=False)
    y8: np.ndarray = field(init=False)
    y7: np.ndarray = field(init=False)
    own: dict[str, list[str]] = field(init=False)
    corpora: list[str] = field(init=False)
    corpus: np.ndarray = field(init=False)  # each clip's corpus

    def __post_init__(self) -> None:
        self.clips7 = [replace(c, label="neutral") if c.label == "calm" else c for c in self.clips8]
        self.labels8 = sorted({c.label for c in self.clips8})
        self.labels7 = sorted({c.label for c in self.clips7})
        self.y8 = np.array([self.labels8.index(c.label) for c in self.clips8])
        self.y7 = np.array([self.labels7.index(c.label) for c in self.clips7])
        present = {c.corpus for c in self.clips8}
        self.corpora = [c for c in CORPORA if c in present] + sorted(present - set(CORPORA))
        self.own = {
            corpus: sorted({c.label for c in self.clips7 if c.corpus == corpus})
            for corpus in self.corpora
        }
        self.corpus = np.array([c.corpus for c in self.clips8])


class Predictor(Protocol):
    """Trains on ``train`` and answers for ``test`` under each condition ("clean" or a noise
    spec): per condition, ``raw``/``calibrated`` probabilities or ``scores``, ``(clips,
    labels)``."""

    def __call__(
        self,
        train: np.ndarray,
        test: np.ndarray,
        conditions: Sequence[str],
        labels: list[str],
        y: np.ndarray,
        *,
        seed: int,
        clips: Sequence[Clip],
    ) -> dict[str, dict[str, np.ndarray]]: ...


@dataclass
class Networks:
    """A recipe (or a study's variant) trained as ``ser-train`` trains a fold."""

    system: System
    feats: Features  # every clip: clean and the recipe's augmented copies
    noisy: Features  # RAVDESS clips only: the noisy test sets
    noisy_row: np.ndarray  # clip index -> row in ``noisy`` (-1 outside RAVDESS)

    def extract(self, conditions: Sequence[str]) -> None:
        """Every feature matrix the run will read, once, before any training."""
        fs = self.system.feature_set
        self.feats.get(fs)
        for augmentation in self.system.config.augmentations:
            self.feats.get(fs, augmentation)
        for condition in conditions:
            self.noisy.get(fs, condition, babble="test")

    def __call__(
        self,
        train: np.ndarray,
        test: np.ndarray,
        conditions: Sequence[str],
        labels: list[str],
        y: np.ndarray,
        *,
        seed: int,
        clips: Sequence[Clip],
    ) -> dict[str, dict[str, np.ndarray]]:
        fs = self.system.feature_set
        tests = {}
        for condition in conditions:
            if condition == "clean":
                tests[condition] = self.feats.get(fs)[test]
            else:
                rows = self.noisy_row[test]
                if (rows < 0).any():
                    raise ValueError("noisy test sets are made of RAVDESS clips only")
                tests[condition] = self.noisy.get(fs, condition, babble="test")[rows]
        out = train_predict(
            self.system, self.feats, train, tests, labels, y, seed=seed, clips=clips
        )
        return {condition: out[condition] for condition in conditions}


@dataclass
class Reference:
    """eGeMAPS + linear SVM on the same folds (decision values, no probabilities)."""

    clips: list[Clip]
    cache_dir: Path
    workers: int
    babble_test: tuple[str, ...]
    noisy_row: np.ndarray
    _store: dict[str, np.ndarray] = field(default_factory=dict)

    def matrix(self, condition: str) -> np.ndarray:
        """Clean: every clip; a noise condition: the RAVDESS clips (``noisy_row``'s order)."""
        if condition not in self._store:
            if condition == "clean":
                clips = self.clips
            else:
                clips = [self.clips[i] for i in np.flatnonzero(self.noisy_row >= 0)]
            self._store[condition] = egemaps.egemaps_matrix(
                clips,
                cache_dir=self.cache_dir,
                workers=self.workers,
                augmentation=None if condition == "clean" else condition,
                babble_sources=() if condition == "clean" else self.babble_test,
            )
        return self._store[condition]

    def extract(self, conditions: Sequence[str]) -> None:
        for condition in ("clean", *conditions):
            self.matrix(condition)

    def __call__(
        self,
        train: np.ndarray,
        test: np.ndarray,
        conditions: Sequence[str],
        labels: list[str],
        y: np.ndarray,
        *,
        seed: int,
        clips: Sequence[Clip],
    ) -> dict[str, dict[str, np.ndarray]]:
        tests = {
            c: self.matrix(c)[test if c == "clean" else self.noisy_row[test]] for c in conditions
        }
        scores = egemaps.svm_scores(self.matrix("clean"), y, train, tests, len(labels), seed=seed)
        return {c: {"scores": scores[c]} for c in conditions}


def protocol_runs(
    predict: Predictor,
    data: Data,
    protocols: Sequence[str],
    *,
    seed: int,
    noises: Sequence[str] = NOISES,
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every fold of the chosen protocols for one system and seed: ``(protocol group,
    result name, metrics)``, one per scored test set; ``noises`` are the RAVDESS folds' noisy
    test sets when "noise" is among ``protocols``."""
    if "loco" in protocols:
        for fold in corpus_folds(data.clips7):
            out = predict(
                fold.train,
                fold.test,
                ("clean",),
                data.labels7,
                data.y7,
                seed=seed,
                clips=data.clips7,
            )
            yield (
                "loco",
                loco_key(fold.name),
                score(out["clean"], data.y7[fold.test], data.labels7, own=data.own[fold.name]),
            )
    if "ravdess" in protocols or "noise" in protocols:
        conditions = ("clean", *noises) if "noise" in protocols else ("clean",)
        for _, train, test in ravdess_folds(data.clips8) if "ravdess" in data.corpora else ():
            if not test.size:
                continue  # a group of actors the data does not hold
            out = predict(
                train, test, conditions, data.labels8, data.y8, seed=seed, clips=data.clips8
            )
            yield "ravdess", RAV8, score(out["clean"], data.y8[test], data.labels8)
            for condition in conditions:
                seven, labels = out[condition], data.labels8
                if "calm" in labels:
                    seven, labels = merge_labels(seven, labels, "calm", "neutral")
                if labels != data.labels7:
                    raise ValueError(f"RAVDESS's labels {labels} are not the seven")
                name = RAV7 if condition == "clean" else noise_key(condition)
                yield "ravdess", name, score(seven, data.y7[test], data.labels7)
    if "cross-speaker" in protocols:
        speakers = np.array([c.speaker for c in data.clips7])
        for voice in sorted({c.speaker for c in data.clips7 if c.corpus == "tess"}):
            train, test = np.flatnonzero(speakers != voice), np.flatnonzero(speakers == voice)
            out = predict(
                train, test, ("clean",), data.labels7, data.y7, seed=seed, clips=data.clips7
            )
            yield (
                "cross-speaker",
                TESS_XS,
                score(out["clean"], data.y7[test], data.labels7, own=data.own["tess"]),
            )
    if "pooled" in protocols:
        for fold in speaker_group_folds(data.clips7, POOLED_FOLDS):
            answers = predict(
                fold.train,
                fold.test,
                ("clean",),
                data.labels7,
                data.y7,
                seed=seed,
                clips=data.clips7,
            )["clean"]
            held = data.corpus[fold.test]
            for corpus in data.corpora:
                rows = np.flatnonzero(held == corpus)
                if rows.size:
                    part = {kind: values[rows] for kind, values in answers.items()}
                    y_true = data.y7[fold.test[rows]]
                    metrics = score(part, y_true, data.labels7, own=data.own[corpus])
                    yield "pooled", pooled_key(corpus), metrics
            each = restrict_each(answers, data.labels7, [data.own[c] for c in held])
            yield "pooled", POOLED_ALL, score(each, data.y7[fold.test], data.labels7)
    if "paper" in protocols and "tess" in data.corpora:
        tess = np.flatnonzero(data.corpus == "tess")
        train, test = stratified_split(
            [data.clips7[i].label for i in tess], test_fraction=0.2, seed=seed
        )
        out = predict(
            tess[train], tess[test], ("clean",), data.labels7, data.y7, seed=seed, clips=data.clips7
        )
        yield (
            "paper",
            PAPER_PROTOCOL,
            score(out["clean"], data.y7[tess[test]], data.labels7, own=data.own["tess"]),
        )


def quick_variant(system: System) -> System:
    """A smoke run's version of a recipe: the same features and network, trained briefly."""
    config = system.config
    return replace(
        system,
        config=replace(
            config,
            epochs=min(config.epochs, QUICK_EPOCHS),
            ensemble=1,
            augmentations=config.augmentations[:1],
        ),
    )
