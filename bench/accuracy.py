"""Accuracy benchmark: leave one corpus out over the five corpora first, then RAVDESS
actor-independent (8 classes and 7 labels) with its noisy test sets, TESS cross-speaker, pooled
speaker-independent folds (with calibration) and the paper's TESS random split; the paper's
recipe beside the bundled models' recipes and the eGeMAPS + linear SVM reference.

    .venv/bin/python -m bench.accuracy [--data-root ../shared/data] [--seeds 42 43] [--quick]

Run from the repository root (``make bench-accuracy``). Writes docs/accuracy.md,
docs/accuracy.json and the headline protocols' confusion images in docs/img/. UA (unweighted
accuracy, mean per-class recall) is the primary figure. A focused rerun (some protocols,
other seeds) goes beside it, not over it, e.g.

    .venv/bin/python -m bench.accuracy --protocols loco --seeds 44 45 \\
        --systems default accurate --out accuracy-loco-seeds

``--quick`` is a smoke run (one seed, LOCO and RAVDESS with its noise, networks trained
briefly) into docs/accuracy-quick.md; its figures are not the recipes' accuracy.
Studies run their own variants through :func:`main` (``systems=``): see ``experiments/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench import egemaps
from bench.accuracy_report import (
    DOCS,
    LOCO_MEAN,
    POOLED_MEAN,
    QUICK_EPOCHS,
    REFERENCE,
    loco_key,
    pooled_key,
    write_report,
)
from bench.protocols import (
    NOISES,
    PROTOCOLS,
    Data,
    Networks,
    Reference,
    protocol_runs,
    quick_variant,
)
from bench.scoring import Features, System, babble_talkers, mean_over, over_seeds
from trainer.corpora import CORPORA, Clip, default_data_root, load_corpora
from trainer.extract import default_cache_dir
from trainer.recipes import RECIPES

log = logging.getLogger("bench.accuracy")

#: A smoke run's protocols (with --quick, unless --protocols says otherwise).
QUICK_PROTOCOLS = ("loco", "ravdess", "noise")
DEFAULT_SEEDS = (42, 43)
#: The names the bundled models' recipes had in reports before ``default`` and ``accurate``.
FORMER_NAMES = {
    "speech-stats-v2-voices": "default",
    "speech-stats-v2-voices-ge2e-int8-fused-third-smoothed": "accurate",
}


def run(
    args: argparse.Namespace,
    systems: Mapping[str, System] = RECIPES,
    *,
    clips: Sequence[Clip] | None = None,
    costs: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Train and test each of ``args.systems`` (names in ``systems``, plus the reference when
    ``args.reference`` asks for it) under ``args.protocols`` for every seed.

    ``clips`` (default: the five corpora under ``args.data_root``, RAVDESS calm kept as its
    own label) are the data; ``costs`` receives the seconds each system spent per part.
    Returns results by protocol name, then system: folds and seeds pooled, each seed's UA.
    """
    if clips is None:
        clips = load_corpora(CORPORA, data_root=args.data_root, calm_as="calm")
    data = Data(list(clips))
    args.corpora = data.corpora
    cache, workers = args.cache_dir, args.workers
    tess = [c for c in data.clips7 if c.corpus == "tess"]
    babble_train, babble_test = babble_talkers(tess)
    feats = Features(
        data.clips7,
        cache_dir=cache,
        workers=workers,
        babble_train=babble_train,
        babble_test=babble_test,
    )
    rav = np.flatnonzero(data.corpus == "ravdess")
    noisy_row = np.full(len(data.clips7), -1)
    noisy_row[rav] = np.arange(rav.size)
    noisy = Features(
        [data.clips7[i] for i in rav],
        cache_dir=cache,
        workers=workers,
        babble_train=babble_train,
        babble_test=babble_test,
    )
    predictors: dict[str, Networks | Reference] = {}
    for name in args.systems:
        system = quick_variant(systems[name]) if args.quick else systems[name]
        predictors[name] = Networks(system, feats, noisy, noisy_row)
    if args.reference == "egemaps":
        predictors[REFERENCE] = Reference(data.clips7, cache, workers, babble_test, noisy_row)
    conditions = NOISES if "noise" in args.protocols and rav.size else ()
    runs: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    spent = costs if costs is not None else {}
    # Every system's features first, each clip once per (feature set, augmentation), reused by
    # every protocol and seed; and before training imports TensorFlow, whose threads a forked
    # extraction worker must not inherit.
    for name, predict in predictors.items():
        start = time.perf_counter()
        predict.extract(conditions)
        spent.setdefault(name, {})["features"] = time.perf_counter() - start
    for name, predict in predictors.items():
        parts = spent[name]
        for seed in args.seeds:
            start = time.perf_counter()
            chosen = protocol_runs(predict, data, args.protocols, seed=seed, noises=conditions)
            for group, key, metrics in chosen:
                runs[(key, name)].append((seed, metrics))
                now = time.perf_counter()
                parts[group] = parts.get(group, 0.0) + now - start
                start = now
            log.info("%s seed %d done", name, seed)
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    for (key, name), items in runs.items():
        results[key][name] = over_seeds(items)
    for mean, keys in (
        (LOCO_MEAN, [loco_key(c) for c in data.corpora]),
        (POOLED_MEAN, [pooled_key(c) for c in data.corpora]),
    ):
        for name in predictors:
            rows = [results[k][name] for k in keys if name in results.get(k, {})]
            if rows:
                results[mean][name] = mean_over(rows)
    return dict(results)


def build_parser(systems: Mapping[str, System], prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument(
        "--systems",
        nargs="+",
        default=[name for name in ("paper", "fast", "default", "accurate") if name in systems],
        choices=list(systems),
        help="recipes to train and test side by side (default: the paper's and both bundled "
        "models')",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        help=f"training seeds (default: {' '.join(map(str, DEFAULT_SEEDS))}; --quick: the first)",
    )
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        help="which protocols to run (default: all; --quick: "
        f"{' '.join(QUICK_PROTOCOLS)}); noise trains the RAVDESS folds",
    )
    unavailable = egemaps.available()
    parser.add_argument(
        "--reference",
        choices=("egemaps", "none"),
        default="none" if unavailable else "egemaps",
        help="the eGeMAPS + linear SVM reference row (default: on when opensmile and "
        "scikit-learn import" + (f"; here off: {unavailable})" if unavailable else ")"),
    )
    parser.add_argument(
        "--out",
        help="report name: <out-dir>/<out>.md and .json (default: accuracy, or accuracy-quick "
        "with --quick; confusion images only for the full default report)",
    )
    parser.add_argument("--out-dir", type=Path, default=DOCS, help="default: docs/")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: one seed, fewer protocols, networks trained for at most "
        f"{QUICK_EPOCHS} epochs, one network, one augmented copy",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument(
        "--note", default="", help="free text for the report, e.g. what else ran on the machine"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="re-render the report (and its images) from a saved accuracy.json (no training)",
    )
    return parser


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill the defaults that depend on ``--quick`` and check the reference can run."""
    if args.seeds is None:
        args.seeds = list(DEFAULT_SEEDS[:1] if args.quick else DEFAULT_SEEDS)
    if args.protocols is None:
        args.protocols = list(QUICK_PROTOCOLS if args.quick else PROTOCOLS)
    if args.out is None:
        args.out = "accuracy-quick" if args.quick else "accuracy"
    unavailable = egemaps.available()
    if args.reference == "egemaps" and unavailable:
        parser.error(f"--reference egemaps: {unavailable}")
    if args.reference == "none":
        why = f" ({unavailable})" if unavailable else " (--reference none)"
        args.reference_note = f"\nThe eGeMAPS + linear SVM reference did not run{why}."
    else:
        args.reference_note = ""
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    systems: Mapping[str, System] = RECIPES,
    prog: str = "python -m bench.accuracy",
) -> None:
    """The benchmark's command line over ``systems`` (the product's recipes, or a study's
    variants beside them); ``prog`` is quoted in the report as the command that ran."""
    parser = build_parser(systems, prog)
    args = resolve(parser.parse_args(argv), parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("trainer").setLevel(logging.WARNING)
    descriptions = {name: system.description for name, system in systems.items()}
    # Saved reports name the bundled models' recipes as they were called before the roles.
    for former, role in FORMER_NAMES.items():
        descriptions.setdefault(former, f"the {role} recipe: {RECIPES[role].description}")
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        args.seeds = saved["seeds"]
        args.quick = saved.get("quick", False)
        args.cores = saved.get("cores")
        args.systems = saved.get("systems") or sorted(
            {s for row in saved["results"].values() for s in row}, key=lambda s: s == "paper"
        )
        if REFERENCE not in args.systems and any(REFERENCE in r for r in saved["results"].values()):
            args.systems = [*args.systems, REFERENCE]
        command = saved["command"]
        if not command.startswith("python"):
            command = f"python {command}"
        path = write_report(
            saved["results"],
            args,
            saved["seconds"],
            command=command,
            descriptions=descriptions,
            note=args.note or saved.get("note", ""),
            costs=saved.get("costs"),
        )
    else:
        start = time.time()
        load = os.getloadavg()[0]
        costs: dict[str, dict[str, float]] = {}
        results = run(args, systems, costs=costs)
        note = f"Load average at start {load:.1f}. {args.note}".strip()
        command = " ".join([prog, *(sys.argv[1:] if argv is None else argv)])
        if args.reference == "egemaps":
            args.systems = [*args.systems, REFERENCE]
        path = write_report(
            results,
            args,
            time.time() - start,
            command=command,
            descriptions=descriptions,
            note=note,
            costs=costs,
        )
    print(path.read_text())


if __name__ == "__main__":
    main()
