"""Evaluation protocols (splits) and metrics."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainer.corpora import Clip


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray  # indices
    test: np.ndarray


def stratified_split(
    labels: Sequence[str], *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class random split: the paper's 80/20 protocol."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    train, test = [], []
    for label in sorted(set(labels_arr)):
        idx = np.flatnonzero(labels_arr == label)
        rng.shuffle(idx)
        n_test = max(1, int(round(test_fraction * idx.size)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def random_folds(clips: Sequence[Clip], *, seed: int) -> list[Fold]:
    train, test = stratified_split([c.label for c in clips], test_fraction=0.2, seed=seed)
    return [Fold("random-80-20", train, test)]


def speaker_folds(clips: Sequence[Clip]) -> list[Fold]:
    """Speaker-independent folds, per corpus.

    A corpus with two speakers (TESS) trains on one and tests on the other, both ways;
    a corpus with many (RAVDESS) holds out groups of speakers (six folds of four actors).
    When several corpora are pooled, each fold's other corpora stay in training.
    """
    speakers = np.array([c.speaker for c in clips])
    corpora = np.array([c.corpus for c in clips])
    folds = []
    for corpus in sorted(set(corpora)):
        in_corpus = corpora == corpus
        names = sorted(set(speakers[in_corpus]))
        if len(names) < 2:
            continue
        groups = (
            [[n] for n in names] if len(names) <= 4 else _chunks(names, max(1, len(names) // 6))
        )
        for group in groups:
            held_out = np.isin(speakers, group)
            train_mask = ~held_out
            label = ",".join(s.split(":", 1)[1] for s in group)
            folds.append(
                Fold(
                    f"{corpus}-speaker-{label}",
                    np.flatnonzero(train_mask),
                    np.flatnonzero(held_out),
                )
            )
    return folds


def corpus_folds(clips: Sequence[Clip]) -> list[Fold]:
    """Leave one corpus out: per corpus (by name), train on every other corpus, test on it.

    The figure this gives is the closest one here to recordings from elsewhere: another
    language, other actors, another studio. Score each fold over the held-out corpus's own
    labels (it may lack some of the training labels).

    Returns
    -------
    list of Fold
        One per corpus, named after it; the test indices of all folds cover every clip once.
    """
    corpora = np.array([c.corpus for c in clips])
    names = sorted(set(corpora))
    if len(names) < 2:
        raise ValueError(f"leaving one corpus out needs at least two corpora, not {names}")
    return [
        Fold(name, np.flatnonzero(corpora != name), np.flatnonzero(corpora == name))
        for name in names
    ]


def speaker_group_folds(clips: Sequence[Clip], n_folds: int = 2) -> list[Fold]:
    """Speaker-independent folds over pooled corpora: fold ``k`` holds out the ``k``-th group
    of speakers of every corpus at once, and trains on the rest of all of them.

    Each corpus's speakers are dealt round-robin into ``n_folds`` groups, in an order fixed by
    a hash of the speaker id (not by the id, whose order follows gender in RAVDESS and EMOVO),
    so the folds are the same in every run. A corpus with fewer speakers than folds is held
    out in the first folds only.

    Returns
    -------
    list of Fold
        ``n_folds`` folds named ``speakers-K-of-N``; their test indices cover every clip of
        every corpus with at least two speakers once, and no speaker is on both sides.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, not {n_folds}")
    speakers = np.array([c.speaker for c in clips])
    group_of: dict[str, int] = {}
    for corpus in sorted({c.corpus for c in clips}):
        names = sorted({c.speaker for c in clips if c.corpus == corpus})
        if len(names) < 2:
            continue  # one voice cannot be both trained on and held out
        names.sort(key=lambda s: hashlib.sha256(s.encode()).hexdigest())
        for i, name in enumerate(names):
            group_of[name] = i % n_folds
    groups = np.array([group_of.get(s, -1) for s in speakers])
    return [
        Fold(
            f"speakers-{k + 1}-of-{n_folds}",
            np.flatnonzero(groups != k),
            np.flatnonzero(groups == k),
        )
        for k in range(n_folds)
    ]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def speaker_disjoint_validation(
    clips: Sequence[Clip], train_idx: np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into fit/validation, by speaker where there are enough."""
    rng = np.random.default_rng(seed)
    speakers = np.array([clips[i].speaker for i in train_idx])
    unique = sorted(set(speakers))
    if len(unique) >= 5:
        order = rng.permutation(len(unique))
        n_val = max(1, int(round(fraction * len(unique))))
        val_speakers = {unique[i] for i in order[:n_val]}
        val_mask = np.isin(speakers, list(val_speakers))
        return train_idx[~val_mask], train_idx[val_mask]
    fit, val = stratified_split(
        [clips[i].label for i in train_idx], test_fraction=fraction, seed=seed
    )
    return train_idx[fit], train_idx[val]


def iter_protocol(protocol: str, clips: Sequence[Clip], *, seed: int) -> Iterator[Fold]:
    if protocol == "random":
        yield from random_folds(clips, seed=seed)
    elif protocol == "speaker":
        yield from speaker_folds(clips)
    elif protocol == "loco":
        yield from corpus_folds(clips)
    else:
        raise ValueError(f"unknown protocol {protocol!r} (random, speaker, loco)")


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, unweighted accuracy (mean recall), macro-F1, per-class recall, confusion."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[index[t], index[p]] += 1
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    tp = np.diag(confusion).astype(float)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(tp),
        where=(precision + recall) > 0,
    )
    total = confusion.sum()
    return {
        "n": int(total),
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "unweighted_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_recall": {
            label: float(recall[i]) for i, label in enumerate(labels) if present[i]
        },
        "labels": list(labels),
        "confusion": confusion.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, *, bins: int = 15) -> float:
    """ECE of the top-class confidence over equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def summarise(fold_metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over folds of the scalar metrics, plus pooled confusion."""
    out: dict[str, Any] = {"folds": len(fold_metrics)}
    for key in ("accuracy", "unweighted_accuracy", "macro_f1"):
        values = np.array([m[key] for m in fold_metrics])
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std())
    labels = fold_metrics[0]["labels"]
    confusion = np.sum([np.array(m["confusion"]) for m in fold_metrics], axis=0)
    support = confusion.sum(axis=1)
    out["per_class_recall"] = {
        label: float(confusion[i, i] / support[i]) for i, label in enumerate(labels) if support[i]
    }
    out["labels"] = labels
    out["confusion"] = confusion.tolist()
    return out
