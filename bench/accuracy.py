"""Accuracy benchmark: every protocol of docs/accuracy.md, the paper's recipe beside both
bundled models' recipes.

    .venv/bin/python -m bench.accuracy [--data-root ../shared/data] [--seeds 42 43] [--quick]

Run from the repository root (``make bench-accuracy``). Writes docs/accuracy.md,
docs/accuracy.json and confusion matrices in docs/img/. UA (unweighted accuracy, mean
per-class recall) is the primary figure. A focused rerun (some protocols, other seeds) goes
beside it, not over it, e.g.

    .venv/bin/python -m bench.accuracy --protocols cross-corpus --seeds 43 44 \\
        --systems default accurate --out accuracy-cross-corpus-seeds

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

from bench.accuracy_report import DOCS, write_report
from bench.scoring import (
    Features,
    System,
    babble_talkers,
    pooled,
    ravdess_folds,
    score,
    train_predict,
)
from trainer.corpora import default_data_root, read_ravdess, read_tess
from trainer.evaluate import speaker_folds, stratified_split
from trainer.extract import default_cache_dir
from trainer.recipes import RECIPES

log = logging.getLogger("bench.accuracy")

#: Protocol groups, numbered as in docs/accuracy.md: 3 includes 6 (noise) unless --quick.
PROTOCOLS = ("random", "cross-speaker", "ravdess", "cross-corpus", "pooled")
NOISES = ("white@20", "white@10", "white@5", "babble@20", "babble@10", "babble@5")
#: The names the bundled models' recipes had in reports before ``default`` and ``accurate``.
FORMER_NAMES = {
    "speech-stats-v2-voices": "default",
    "speech-stats-v2-voices-ge2e-int8-fused-third-smoothed": "accurate",
}


def run(args: argparse.Namespace, systems: Mapping[str, System] = RECIPES) -> dict[str, Any]:
    """Train and test each of ``args.systems`` (names in ``systems``) under ``args.protocols``
    for every seed; results by protocol, then system, pooled over folds and seeds."""
    root = args.data_root
    tess = read_tess(root / "tess")
    rav7 = read_ravdess(root / "ravdess")
    rav8 = read_ravdess(root / "ravdess", native_labels=True)
    babble_train, babble_test = babble_talkers(tess)
    cache, workers = args.cache_dir, args.workers
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    # Every fold of every (protocol, system); pooled once all seeds are in.
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}

    corpora = {"tess": tess, "rav7": rav7, "rav8": rav8, "both": tess + rav7}
    feats = {
        k: Features(
            v, cache_dir=cache, workers=workers, babble_train=babble_train, babble_test=babble_test
        )
        for k, v in corpora.items()
    }
    label_sets = {k: sorted({c.label for c in v}) for k, v in corpora.items()}
    ys = {k: np.array([label_sets[k].index(c.label) for c in v]) for k, v in corpora.items()}

    for name in args.systems:
        system = systems[name]
        for seed in args.seeds:
            f, y, labels = feats["tess"], ys["tess"], label_sets["tess"]
            # 1. TESS random 80/20 (the paper's protocol).
            if "random" in args.protocols:
                tr, te = stratified_split([c.label for c in tess], test_fraction=0.2, seed=seed)
                out = train_predict(
                    system, f, tr, {"test": f.get(system.feature_set)[te]}, labels, y, seed=seed
                )
                runs.setdefault(("1 TESS random 80/20", name), []).append(
                    score(out["test"], y[te], labels)
                )
            # 2. TESS cross-speaker.
            spk = np.array([c.speaker for c in tess])
            pairs = (("tess:OAF", "tess:YAF"), ("tess:YAF", "tess:OAF"))
            for train_spk, test_spk in pairs if "cross-speaker" in args.protocols else ():
                tr, te = np.flatnonzero(spk == train_spk), np.flatnonzero(spk == test_spk)
                out = train_predict(
                    system, f, tr, {"test": f.get(system.feature_set)[te]}, labels, y, seed=seed
                )
                runs.setdefault(("2 TESS cross-speaker", name), []).append(
                    score(out["test"], y[te], labels)
                )
            # 3 + 6. RAVDESS actor-independent, 7 labels, with noise.
            f, y, labels = feats["rav7"], ys["rav7"], label_sets["rav7"]
            for _, tr, te in ravdess_folds(rav7) if "ravdess" in args.protocols else ():
                tests = {"clean": f.get(system.feature_set)[te]}
                if not args.quick:
                    for noise in NOISES:
                        tests[noise] = f.get(system.feature_set, noise, babble="test")[te]
                out = train_predict(system, f, tr, tests, labels, y, seed=seed)
                runs.setdefault(("3 RAVDESS actor-independent, 7 labels", name), []).append(
                    score(out["clean"], y[te], labels)
                )
                for noise in tests:
                    if noise != "clean":
                        runs.setdefault((f"6 RAVDESS 7 labels + {noise} dB", name), []).append(
                            score(out[noise], y[te], labels)
                        )
            # 3. RAVDESS 8 classes (benchmark only: "calm" is not a product label).
            f8, y8, labels8 = feats["rav8"], ys["rav8"], label_sets["rav8"]
            for _, tr, te in ravdess_folds(rav8) if "ravdess" in args.protocols else ():
                out = train_predict(
                    system, f8, tr, {"test": f8.get(system.feature_set)[te]}, labels8, y8, seed=seed
                )
                runs.setdefault(("3 RAVDESS actor-independent, 8 classes", name), []).append(
                    score(out["test"], y8[te], labels8)
                )
            # 4. Cross-corpus on the shared labels (RAVDESS calm dropped).
            fb, yb, labelsb = feats["both"], ys["both"], label_sets["both"]
            is_tess = np.array([c.corpus == "tess" for c in corpora["both"]])
            not_calm = np.ones(
                len(is_tess), dtype=bool
            )  # rav7 maps calm to neutral; exclude it here
            rav_native = {c.path: c.label for c in rav8}
            for i, c in enumerate(corpora["both"]):
                if c.corpus == "ravdess" and rav_native[c.path] == "calm":
                    not_calm[i] = False
            for direction, tr_mask, te_mask in (
                (
                    ("TESS -> RAVDESS", is_tess, ~is_tess & not_calm),
                    ("RAVDESS -> TESS", ~is_tess & not_calm, is_tess),
                )
                if "cross-corpus" in args.protocols
                else ()
            ):
                tr, te = np.flatnonzero(tr_mask), np.flatnonzero(te_mask)
                out = train_predict(
                    system, fb, tr, {"test": fb.get(system.feature_set)[te]}, labelsb, yb, seed=seed
                )
                runs.setdefault((f"4 cross-corpus {direction}", name), []).append(
                    score(out["test"], yb[te], labelsb)
                )
            # 5. Pooled TESS + RAVDESS, speaker-independent (the trainer's `speaker` protocol).
            if "pooled" in args.protocols and not (args.quick or args.skip_pooled):
                for fold in speaker_folds(corpora["both"]):
                    out = train_predict(
                        system,
                        fb,
                        fold.train,
                        {"test": fb.get(system.feature_set)[fold.test]},
                        labelsb,
                        yb,
                        seed=seed,
                    )
                    corpus = fold.name.split("-speaker-")[0]
                    runs.setdefault((f"5 pooled, held-out {corpus} speakers", name), []).append(
                        score(out["test"], yb[fold.test], labelsb)
                    )
    for (protocol, system_name), items in runs.items():
        results[protocol][system_name] = pooled(items)
    return dict(results)


def build_parser(systems: Mapping[str, System], prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument(
        "--systems",
        nargs="+",
        default=[name for name in ("paper", "default", "accurate") if name in systems],
        choices=list(systems),
        help="recipes to train and test side by side (default: the paper's and both bundled "
        "models')",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        default=list(PROTOCOLS),
        help="which protocols to run (default: all); ravdess includes its noisy test sets",
    )
    parser.add_argument(
        "--out",
        default="accuracy",
        help="report name: docs/<out>.md and .json (plots only for the default)",
    )
    parser.add_argument("--quick", action="store_true", help="skip noise and pooled protocols")
    parser.add_argument(
        "--skip-pooled",
        action="store_true",
        help="skip protocol 5 (the same folds as `ser-train`'s speaker protocol, whose figures "
        "the bundled model carries); the costliest protocol",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument(
        "--note", default="", help="free text for the report, e.g. what else ran on the machine"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        help="re-render docs/accuracy.md and the plots from a saved accuracy.json (no training)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    systems: Mapping[str, System] = RECIPES,
    prog: str = "python -m bench.accuracy",
) -> None:
    """The benchmark's command line over ``systems`` (the product's recipes, or a study's
    variants beside them); ``prog`` is quoted in the report as the command that ran."""
    args = build_parser(systems, prog).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("trainer").setLevel(logging.WARNING)
    descriptions = {name: system.description for name, system in systems.items()}
    # Saved reports name the bundled models' recipes as they were called before the roles.
    for former, role in FORMER_NAMES.items():
        descriptions.setdefault(former, f"the {role} recipe: {RECIPES[role].description}")
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        args.seeds = saved["seeds"]
        args.systems = saved.get("systems") or sorted(
            {s for row in saved["results"].values() for s in row}, key=lambda s: s == "paper"
        )
        command = saved["command"]
        if not command.startswith("python"):
            command = f"python {command}"
        write_report(
            saved["results"],
            args,
            saved["seconds"],
            command=command,
            descriptions=descriptions,
            note=args.note or saved.get("note", ""),
        )
    else:
        start = time.time()
        load = os.getloadavg()[0]
        results = run(args, systems)
        note = f"Load average at start {load:.1f}. {args.note}".strip()
        command = " ".join([prog, *(sys.argv[1:] if argv is None else argv)])
        write_report(
            results,
            args,
            time.time() - start,
            command=command,
            descriptions=descriptions,
            note=note,
        )
    print((DOCS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
