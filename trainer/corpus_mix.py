"""Training on a mix of corpora: which labels each clip's corpus has, and weights that keep
one corpus (or one voice) from drowning the others.

Not every corpus has every label (TurEV-DB has four of the seven, EmoDB no surprise), and
nothing in a four-label corpus says the other three do not exist: its clips are labelled
among its own labels only. ``TrainConfig.mask_absent_labels`` scores each clip over its
corpus's labels (:func:`label_masks`); ``TrainConfig.balance`` weights clips so that each
speaker or each corpus carries the same total weight (:func:`balance_weights`), since TESS
alone holds 2,800 clips of two voices against EmoDB's 454 of ten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import TypedDict, TypeVar

import numpy as np

from trainer.config import TrainConfig
from trainer.corpora import Clip

Label = TypeVar("Label", bound=Hashable)


class FitArguments(TypedDict):
    """What ``trainer.network.fit`` needs to know of each clip besides features and label."""

    fit_masks: np.ndarray | None  # (n_fit, n_labels): the labels each clip's corpus has
    val_masks: np.ndarray | None  # (n_val, n_labels)
    fit_groups: np.ndarray | None  # (n_fit,): the speaker or corpus each clip is balanced in


def corpus_label_sets(
    corpora: Sequence[str], labels: Sequence[Label]
) -> dict[str, frozenset[Label]]:
    """The labels seen per corpus among the training clips.

    Parameters
    ----------
    corpora : sequence of str, length n_clips
        Each training clip's corpus.
    labels : sequence, length n_clips
        Each clip's label: a name, or its index in the model's labels.

    Returns
    -------
    dict
        Corpus name to the set of labels its clips carry.
    """
    if len(corpora) != len(labels):
        raise ValueError(f"{len(corpora)} corpora for {len(labels)} labels")
    seen: dict[str, set[Label]] = defaultdict(set)
    for corpus, label in zip(corpora, labels, strict=True):
        seen[corpus].add(label)
    return {corpus: frozenset(found) for corpus, found in sorted(seen.items())}


def label_masks(
    corpora: Sequence[str], label_sets: dict[str, frozenset[int]], n_labels: int
) -> np.ndarray:
    """Which labels each clip's corpus has, as 0/1 rows.

    Parameters
    ----------
    corpora : sequence of str, length n_clips
    label_sets : dict
        Corpus name to label indices, as :func:`corpus_label_sets` gives them.
    n_labels : int

    Returns
    -------
    np.ndarray, shape (n_clips, n_labels), float32
        ``mask[i, k] = 1`` when clip ``i``'s corpus has label ``k``.
    """
    rows = {}
    for corpus, allowed in label_sets.items():
        row = np.zeros(n_labels, dtype=np.float32)
        row[sorted(allowed)] = 1.0
        rows[corpus] = row
    missing = sorted(set(corpora) - set(rows))
    if missing:
        raise ValueError(f"no label set for corpora {missing}")
    if not corpora:
        return np.zeros((0, n_labels), dtype=np.float32)
    return np.stack([rows[corpus] for corpus in corpora])


def balance_groups(clips: Sequence[Clip], indices: np.ndarray, balance: str) -> np.ndarray | None:
    """The group each of ``clips[indices]`` is balanced in: its speaker, its corpus, or
    ``None`` for ``balance="none"``; shape ``(len(indices),)``."""
    if balance == "none":
        return None
    if balance == "speaker":
        return np.array([clips[i].speaker for i in indices])
    if balance == "corpus":
        return np.array([clips[i].corpus for i in indices])
    raise ValueError(f"unknown balance {balance!r} (none, speaker, corpus)")


def balance_weights(groups: np.ndarray) -> np.ndarray:
    """Per-clip weights giving every group the same total, ``n_clips / n_groups``.

    Parameters
    ----------
    groups : np.ndarray, shape (n_clips,)
        Each clip's group (speaker or corpus).

    Returns
    -------
    np.ndarray, shape (n_clips,), float64
        ``n_clips / (n_groups * size of the clip's group)``: mean 1.
    """
    names, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return len(groups) / (len(names) * counts[index].astype(float))


def combine_weights(class_weights: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """Class weights times balance weights per clip, renormalised to mean 1; shape
    ``(n_clips,)``. Within a group, rare classes still count more; the groups' totals are
    then equal only up to their mix of classes (both at once is not sought)."""
    product = np.asarray(class_weights, dtype=float) * np.asarray(balance, dtype=float)
    return product / product.mean()


def fit_arguments(
    clips: Sequence[Clip],
    y: np.ndarray,
    train_idx: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    n_views: int,
    n_labels: int,
    config: TrainConfig,
) -> FitArguments:
    """``trainer.network.fit``'s ``fit_masks``, ``val_masks`` and ``fit_groups`` for one fold.

    The label sets come from the fold's training clips (``train_idx``, both its fitted and
    validation parts); the fitted clips repeat once per view (the clean one and each
    augmented copy), as their features do.
    """
    out = FitArguments(fit_masks=None, val_masks=None, fit_groups=None)
    if config.mask_absent_labels:
        sets = corpus_label_sets(
            [clips[i].corpus for i in train_idx], [int(k) for k in y[train_idx]]
        )
        fit_masks = label_masks([clips[i].corpus for i in fit_idx], sets, n_labels)
        out["fit_masks"] = np.concatenate([fit_masks] * n_views)
        out["val_masks"] = label_masks([clips[i].corpus for i in val_idx], sets, n_labels)
    groups = balance_groups(clips, fit_idx, config.balance)
    if groups is not None:
        out["fit_groups"] = np.concatenate([groups] * n_views)
    return out
