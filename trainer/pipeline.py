"""Train, evaluate under each protocol, train the final model on everything, export."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.contract import EMOTIONS
from service.features import FeatureSet, StatsWithEncoder
from trainer.calibrate import apply_temperature, fit_temperature
from trainer.card import write_card
from trainer.config import TrainConfig
from trainer.corpora import Clip
from trainer.corpus_mix import fit_arguments
from trainer.evaluate import (
    classification_metrics,
    expected_calibration_error,
    iter_protocol,
    speaker_disjoint_validation,
    summarise,
)
from trainer.extract import extract_corpus
from trainer.network import fit, fuse_networks, predict_proba, with_temperature

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_path: Path
    metadata: dict[str, str]
    evaluation: dict[str, Any]


def data_summary(clips: Sequence[Clip]) -> dict[str, Any]:
    by_corpus: dict[str, Any] = {}
    for corpus in sorted({c.corpus for c in clips}):
        subset = [c for c in clips if c.corpus == corpus]
        by_corpus[corpus] = {
            "clips": len(subset),
            "speakers": len({c.speaker for c in subset}),
            "labels": dict(sorted(Counter(c.label for c in subset).items())),
        }
    return {"clips": len(clips), "corpora": by_corpus}


@dataclass
class FoldModel:
    model: Any
    temperature: float
    fit_idx: np.ndarray
    val_idx: np.ndarray


def train_fold(
    views: dict[str | None, np.ndarray],
    y: np.ndarray,
    clips: Sequence[Clip],
    train_idx: np.ndarray,
    *,
    n_labels: int,
    config: TrainConfig,
    statistics_columns: int | None = None,
) -> FoldModel:
    """Fit on the clean and augmented views of ``train_idx``; calibrate on held-out speakers.

    With ``statistics_columns``, a second network is fitted on those leading columns alone,
    each network is calibrated, and the model is their average, ``config.fuse_statistics``
    on the second (its own temperature fitted on the same held-out speakers).
    """
    fit_idx, val_idx = speaker_disjoint_validation(
        clips, train_idx, fraction=config.validation_fraction, seed=config.seed
    )
    y_fit = np.concatenate([y[fit_idx]] * len(views))
    pooled = fit_arguments(
        clips, y, train_idx, fit_idx, val_idx, n_views=len(views), n_labels=n_labels, config=config
    )

    def calibrated(columns: slice) -> tuple[Any, float]:
        x_fit = np.concatenate([view[fit_idx, columns] for view in views.values()])
        x_val = views[None][val_idx, columns]
        model = fit(x_fit, y_fit, x_val, y[val_idx], n_labels=n_labels, config=config, **pooled)
        return model, fit_temperature(predict_proba(model, x_val), y[val_idx])

    model, temperature = calibrated(slice(None))
    if statistics_columns is not None:
        leading = with_temperature(*calibrated(slice(statistics_columns)))
        model = fuse_networks(
            with_temperature(model, temperature),
            leading,
            columns=statistics_columns,
            leading_weight=config.fuse_statistics,
        )
        temperature = fit_temperature(predict_proba(model, views[None][val_idx]), y[val_idx])
    return FoldModel(model, temperature, fit_idx, val_idx)


def fusion_columns(feature_set: FeatureSet, config: TrainConfig) -> int | None:
    """How many leading features the fused statistics network reads (None: no fusion)."""
    if not config.fuse_statistics:
        return None
    if not 0.0 < config.fuse_statistics < 1.0:
        raise ValueError(f"fuse_statistics must lie in (0, 1), not {config.fuse_statistics}")
    if not isinstance(feature_set, StatsWithEncoder):
        raise ValueError(
            f"fuse_statistics needs statistics followed by an encoder's outputs, and "
            f"{feature_set.name} is not such a feature set"
        )
    return feature_set.statistics.dim


def evaluate_protocol(
    protocol: str,
    views: dict[str | None, np.ndarray],
    y: np.ndarray,
    clips: Sequence[Clip],
    labels: Sequence[str],
    *,
    config: TrainConfig,
    statistics_columns: int | None = None,
) -> dict[str, Any]:
    """Metrics per fold and summarised per corpus of the held-out data."""
    per_fold: dict[str, Any] = {}
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    x = views[None]
    for fold in iter_protocol(protocol, clips, seed=config.seed):
        log.info(
            "%s: fold %s (%d train, %d test)", protocol, fold.name, fold.train.size, fold.test.size
        )
        trained = train_fold(
            views,
            y,
            clips,
            fold.train,
            n_labels=len(labels),
            config=config,
            statistics_columns=statistics_columns,
        )
        raw = predict_proba(trained.model, x[fold.test])
        probs = apply_temperature(raw, trained.temperature)
        # A held-out corpus is scored over its own labels: the answer is the likeliest of them.
        scored = (
            sorted(set(y[fold.test].tolist())) if protocol == "loco" else list(range(len(labels)))
        )
        choice = np.array(scored)[probs[:, scored].argmax(axis=1)]
        metrics = classification_metrics(
            [labels[i] for i in y[fold.test]],
            [labels[i] for i in choice],
            [labels[i] for i in scored],
        )
        metrics["ece_uncalibrated"] = expected_calibration_error(raw, y[fold.test])
        metrics["ece"] = expected_calibration_error(probs, y[fold.test])
        metrics["temperature"] = trained.temperature
        per_fold[fold.name] = metrics
        group = "all" if protocol == "random" else fold.name.split("-speaker-")[0]
        grouped[group].append(metrics)
        log.info("%s %s: UA %.3f", protocol, fold.name, metrics["unweighted_accuracy"])
    return {
        "summary": {group: summarise(items) for group, items in grouped.items()},
        "folds": {
            name: {k: v for k, v in m.items() if k != "confusion"} for name, m in per_fold.items()
        },
    }


def babble_sources_for(clips: Sequence[Clip], count: int = 4) -> tuple[str, ...]:
    """A few talkers from the training data itself, spread over the corpus, for babble noise."""
    paths = sorted(str(c.path) for c in clips)
    step = max(1, len(paths) // count)
    return tuple(paths[::step][:count])


def train_and_export(
    clips: Sequence[Clip],
    *,
    feature_set: FeatureSet,
    config: TrainConfig,
    out_path: Path,
    name: str,
    protocols: Sequence[str] = ("random", "speaker"),
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    licences: Sequence[str] = (),
) -> TrainResult:
    """Extract ``feature_set`` (any feature set object: a recipe's, or a variant's) over
    ``clips`` and their augmented copies, evaluate ``config`` under each protocol, train it
    on everything and export the model with its card, metrics and training configuration.
    """
    from trainer.export import export_model  # TensorFlow/tf2onnx only when exporting

    fused = fusion_columns(feature_set, config)  # before hours of extraction, not after
    x, kept = extract_corpus(
        clips, feature_set=feature_set, cache_dir=cache_dir, workers=workers, progress=progress
    )
    views: dict[str | None, np.ndarray] = {None: x}
    babble = babble_sources_for(kept)
    for augmentation in config.augmentations:
        augmented, kept_aug = extract_corpus(
            kept,
            feature_set=feature_set,
            cache_dir=cache_dir,
            workers=workers,
            progress=progress,
            augmentation=augmentation,
            babble_sources=babble,
        )
        if len(kept_aug) != len(kept):
            raise RuntimeError(f"augmentation {augmentation} lost clips")
        views[augmentation] = augmented
    present = {c.label for c in kept}
    labels = [label for label in EMOTIONS if label in present]
    unknown = present - set(labels)
    if unknown:
        raise ValueError(f"labels outside the product's emotions: {sorted(unknown)}")
    y = np.array([labels.index(c.label) for c in kept])
    evaluation = {
        protocol: evaluate_protocol(
            protocol, views, y, kept, labels, config=config, statistics_columns=fused
        )
        for protocol in protocols
    }
    log.info("training the final model on all %d clips", len(kept))
    final = train_fold(
        views,
        y,
        kept,
        np.arange(len(kept)),
        n_labels=len(labels),
        config=config,
        statistics_columns=fused,
    )
    summary = data_summary(kept)
    metrics = {protocol: result["summary"] for protocol, result in evaluation.items()}
    metrics["temperature"] = final.temperature
    meta = export_model(
        with_temperature(final.model, final.temperature),
        path=out_path,
        name=name,
        labels=labels,
        feature_set=feature_set,
        parity_features=x[final.val_idx],
        training_data=summary,
        metrics=metrics,
        temperature=final.temperature,
    )
    stem = out_path.with_suffix("")
    Path(f"{stem}.train.json").write_text(
        json.dumps(
            {
                "config": config.to_dict(),
                "feature_set": feature_set.to_dict(),
                "protocols": list(protocols),
            },
            indent=2,
        )
        + "\n"
    )
    Path(f"{stem}.metrics.json").write_text(json.dumps(evaluation, indent=2, sort_keys=True) + "\n")
    write_card(
        out_path.with_suffix(".card.md"),
        metadata=meta,
        evaluation=evaluation,
        config=config,
        licences=licences,
    )
    return TrainResult(out_path, meta, evaluation)
