"""Leave one corpus out: does scoring each clip over its own corpus's labels, or balancing
speakers or corpora, help a model meet a corpus it never saw?

    taskset -c 1 .venv/bin/python -m experiments.loco_training [--seeds 42 43]
        [--variants plain mask ...] [--out /tmp/loco_training.json]

Five corpora (TESS, RAVDESS, EmoDB, EMOVO, TurEV-DB): train on four, test on the fifth. UA is
the mean per-class recall over the held-out corpus's own labels, the prediction the argmax
over those labels (TurEV-DB is scored on its four, EmoDB on its six). Variants of the
``default`` recipe's training, built here with ``dataclasses.replace``:

- ``plain``: the recipe's training as it is;
- ``mask``: ``mask_absent_labels`` (each clip's loss over its own corpus's labels);
- ``balance-speaker``, ``balance-corpus``: ``balance`` (every speaker, or every corpus, the
  same total weight, times the class weights);
- ``mask+balance-corpus``: both.

To keep the cost affordable on a shared 2-core machine: the fast recipe's features
(``speech-stats-v2``; the default's recipe when this ran), cached by ``trainer.extract.extract_corpus``) without augmentation and
with one network instead of three; its other settings as they are (MLP 256-128, dropout 0.3,
60 epochs, batch 128, class weights, speaker-disjoint early stopping).

Adoption rule, declared before the run: a variant is adopted for the bundled recipes if its
LOCO mean UA (the mean over the five held-out corpora) beats ``plain``'s on both seeds (42 and
43) and by at least 1.0 point on average over the seeds, and no held-out corpus loses more
than 3 points on average over the seeds.

Each (seed, variant, held-out corpus) is one JSON row, the file rewritten after each; the
table and the rule's verdict are printed at the end (``--report`` prints them from the file).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from service.contract import EMOTIONS
from trainer.config import TrainConfig
from trainer.corpora import CORPORA, default_data_root, load_corpora
from trainer.corpus_mix import corpus_label_sets
from trainer.evaluate import classification_metrics
from trainer.extract import default_cache_dir, extract_corpus
from trainer.recipes import FAST

log = logging.getLogger("loco_training")

#: The recipe's training without augmentation and with one network (see the docstring).
BASE = replace(FAST.config, augmentations=(), ensemble=1, balance="none")
VARIANTS: dict[str, TrainConfig] = {
    "plain": BASE,
    "mask": replace(BASE, mask_absent_labels=True),
    "balance-speaker": replace(BASE, balance="speaker"),
    "balance-corpus": replace(BASE, balance="corpus"),
    "mask+balance-corpus": replace(BASE, mask_absent_labels=True, balance="corpus"),
}
#: The declared rule's thresholds (UA as a fraction).
MIN_MEAN_GAIN = 0.010
MAX_CORPUS_LOSS = 0.030


def held_out_scores(
    probs: np.ndarray, y_true: np.ndarray, labels: Sequence[str], own: Sequence[str]
) -> dict[str, Any]:
    """UA over the held-out corpus's labels ``own``, predicting among them (``ua``); and,
    for reference, predicting among every label (``ua_any_label``: a prediction outside
    ``own`` is simply wrong). ``probs`` has shape ``(n_clips, len(labels))``."""
    columns = [labels.index(label) for label in own]
    truth = [labels[i] for i in y_true]
    among_own = [own[i] for i in probs[:, columns].argmax(axis=1)]
    scored = classification_metrics(truth, among_own, own)
    anywhere = classification_metrics(truth, [labels[i] for i in probs.argmax(axis=1)], labels)
    return {
        "ua": scored["unweighted_accuracy"],
        "accuracy": scored["accuracy"],
        "per_class_recall": scored["per_class_recall"],
        "ua_any_label": anywhere["unweighted_accuracy"],
    }


def run(
    seeds: Sequence[int],
    variants: Sequence[str],
    out: Path,
    *,
    data_root: Path | None,
    held_out_corpora: Sequence[str] = CORPORA,
) -> list[dict[str, Any]]:
    from trainer.network import predict_proba
    from trainer.pipeline import train_fold

    clips = load_corpora(CORPORA, data_root=data_root)
    x, kept = extract_corpus(
        clips, feature_set=FAST.feature_set, cache_dir=default_cache_dir(), workers=1
    )
    present = {c.label for c in kept}
    labels = [label for label in EMOTIONS if label in present]
    y = np.array([labels.index(c.label) for c in kept])
    corpora = np.array([c.corpus for c in kept])
    own_labels = {
        corpus: [label for label in labels if label in found]
        for corpus, found in corpus_label_sets(list(corpora), [c.label for c in kept]).items()
    }
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for variant in variants:
            config = replace(VARIANTS[variant], seed=seed)
            for held_out in held_out_corpora:
                start = time.perf_counter()
                train_idx = np.flatnonzero(corpora != held_out)
                test_idx = np.flatnonzero(corpora == held_out)
                trained = train_fold(
                    {None: x}, y, kept, train_idx, n_labels=len(labels), config=config
                )
                # Temperature scaling keeps each clip's ranking: raw probabilities suffice.
                probs = predict_proba(trained.model, x[test_idx])
                row = {
                    "seed": seed,
                    "variant": variant,
                    "held_out": held_out,
                    "labels": own_labels[held_out],
                    "n_train": int(train_idx.size),
                    "n_test": int(test_idx.size),
                    **held_out_scores(probs, y[test_idx], labels, own_labels[held_out]),
                    "seconds": round(time.perf_counter() - start, 1),
                }
                rows.append(row)
                out.write_text(json.dumps(rows, indent=1) + "\n")
                log.info(
                    "seed %d %s -> %s: UA %.3f (%.0f s)",
                    seed,
                    variant,
                    held_out,
                    row["ua"],
                    row["seconds"],
                )
    return rows


def report(rows: Sequence[dict[str, Any]]) -> str:
    """The table (UA % per held-out corpus and the mean, per seed and averaged over seeds)
    and the declared rule's verdict for each variant against ``plain``; a missing run is a
    NaN, shown as ``-``, and leaves its variant without a verdict."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    corpora = [c for c in CORPORA if any(r["held_out"] == c for r in rows)]
    # ua[variant][seed, corpus]
    ua = {v: np.full((len(seeds), len(corpora)), np.nan) for v in variants}
    for r in rows:
        ua[r["variant"]][seeds.index(r["seed"]), corpora.index(r["held_out"])] = r["ua"]

    lines = ["| variant | seed | " + " | ".join(corpora) + " | mean |"]
    lines.append("|---" * (len(corpora) + 3) + "|")
    for variant in variants:
        table = ua[variant]
        for name, per in [*zip(map(str, seeds), table, strict=True), ("avg", table.mean(0))]:
            cells = [*per, per.mean()]
            lines.append(f"| {variant} | {name} | " + " | ".join(_pct(v) for v in cells) + " |")
    lines.append("")
    if "plain" not in variants:
        return "\n".join(lines)
    for variant in variants:
        if variant == "plain":
            continue
        delta = ua[variant] - ua["plain"]  # (seeds, corpora)
        gains = delta.mean(axis=1)  # the LOCO mean's gain, per seed
        per_corpus = delta.mean(axis=0)  # each held-out corpus, averaged over seeds
        if np.isnan(delta).any():
            lines.append(f"- {variant}: incomplete")
            continue
        worst = int(per_corpus.argmin())
        adopted = (
            bool((gains > 0).all())
            and gains.mean() >= MIN_MEAN_GAIN
            and per_corpus[worst] >= -MAX_CORPUS_LOSS
        )
        lines.append(
            f"- {variant}: LOCO mean UA {gains.mean() * 100:+.2f} points over plain (per seed "
            f"{', '.join(f'{g * 100:+.2f}' for g in gains)}); per held-out corpus "
            + ", ".join(f"{c} {d * 100:+.1f}" for c, d in zip(corpora, per_corpus, strict=True))
            + f"; worst {corpora[worst]}: {'ADOPT' if adopted else 'do not adopt'}"
        )
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if np.isnan(value) else f"{value * 100:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--held-out", nargs="+", choices=CORPORA, default=list(CORPORA))
    parser.add_argument("--out", type=Path, default=Path("/tmp/loco_training.json"))
    parser.add_argument("--data-root", type=Path, default=None, help=f"{default_data_root()}")
    parser.add_argument("--report", action="store_true", help="only print the table of --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.report:
        rows = json.loads(args.out.read_text())
    else:
        # One core: TensorFlow's own pools follow the environment's thread count.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        rows = run(
            args.seeds,
            args.variants,
            args.out,
            data_root=args.data_root,
            held_out_corpora=args.held_out,
        )
    print(report(rows))


if __name__ == "__main__":
    main()
