"""Accuracy benchmark: every protocol of issue 3, the paper's recipe beside our best system.

    .venv/bin/python bench/accuracy.py [--data-root ../shared/data] [--seeds 42 43] [--quick]

Writes docs/accuracy.md, docs/accuracy.json and confusion matrices in docs/img/. UA
(unweighted accuracy, mean per-class recall) is the primary figure. A focused rerun (some
protocols, other seeds) goes beside it, not over it, e.g.

    .venv/bin/python bench/accuracy.py --protocols cross-corpus --seeds 43 44 \
        --systems speech-stats speech-stats-v2 --out accuracy-cross-corpus-seeds
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.features import get_feature_set  # noqa: E402
from trainer.calibrate import apply_temperature  # noqa: E402
from trainer.corpora import Clip, default_data_root, read_ravdess, read_tess  # noqa: E402
from trainer.evaluate import (  # noqa: E402
    classification_metrics,
    expected_calibration_error,
    speaker_folds,
    stratified_split,
)
from trainer.extract import default_cache_dir, extract_corpus  # noqa: E402
from trainer.recipes import ACCURATE_MODEL_RECIPE, DEFAULT_RECIPE, RECIPES, Recipe  # noqa: E402

log = logging.getLogger("bench.accuracy")
DOCS = Path(__file__).resolve().parent.parent / "docs"


System = Recipe
#: Protocol groups, by the issue's numbers: 3 includes 6 (noise) unless --quick.
PROTOCOLS = ("random", "cross-speaker", "ravdess", "cross-corpus", "pooled")
SYSTEMS = RECIPES
NOISES = ("white@20", "white@10", "white@5", "babble@20", "babble@10", "babble@5")


class Features:
    """Feature matrices per (feature set, augmentation), aligned to a clip list."""

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
        self, feature_set: str, augmentation: str | None = None, babble: str = "train"
    ) -> np.ndarray:
        key = (feature_set, augmentation, babble)
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
        statistics_columns=fusion_columns(get_feature_set(system.feature_set), config),
    )
    out: dict[str, Any] = {"temperature": trained.temperature}
    for name, x_test in test_sets.items():
        raw = predict_proba(trained.model, x_test)
        out[name] = {"raw": raw, "calibrated": apply_temperature(raw, trained.temperature)}
    return out


def score(probs: dict[str, np.ndarray], y_true: np.ndarray, labels: list[str]) -> dict[str, Any]:
    m = classification_metrics(
        [labels[i] for i in y_true], [labels[i] for i in probs["raw"].argmax(1)], labels
    )
    m["ece_raw"] = expected_calibration_error(probs["raw"], y_true)
    m["ece"] = expected_calibration_error(probs["calibrated"], y_true)
    return m


def pooled(metrics: list[dict[str, Any]]) -> dict[str, Any]:
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
    actors = np.array([int(c.speaker.split(":")[1]) for c in clips])
    folds = []
    for start in range(1, 25, 4):
        held = (actors >= start) & (actors < start + 4)
        folds.append((f"actors {start}-{start + 3}", np.flatnonzero(~held), np.flatnonzero(held)))
    return folds


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = args.data_root
    tess = read_tess(root / "tess")
    rav7 = read_ravdess(root / "ravdess")
    rav8 = read_ravdess(root / "ravdess", native_labels=True)
    # Babble talkers come from TESS (never a RAVDESS test actor); train and test use different words.
    tess_sorted = sorted(c.path for c in tess)
    babble_train = tuple(str(p) for p in tess_sorted[::401][:4])
    babble_test = tuple(str(p) for p in tess_sorted[200::397][:4])
    cache, workers = args.cache_dir, args.workers
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    # Every fold of every (protocol, system); pooled once all seeds are in.
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    systems = [SYSTEMS[s] for s in args.systems]

    corpora = {"tess": tess, "rav7": rav7, "rav8": rav8, "both": tess + rav7}
    feats = {
        k: Features(
            v, cache_dir=cache, workers=workers, babble_train=babble_train, babble_test=babble_test
        )
        for k, v in corpora.items()
    }
    label_sets = {k: sorted({c.label for c in v}) for k, v in corpora.items()}
    ys = {k: np.array([label_sets[k].index(c.label) for c in v]) for k, v in corpora.items()}

    for system in systems:
        for seed in args.seeds:
            f, y, labels = feats["tess"], ys["tess"], label_sets["tess"]
            # 1. TESS random 80/20 (the paper's protocol).
            if "random" in args.protocols:
                tr, te = stratified_split([c.label for c in tess], test_fraction=0.2, seed=seed)
                out = train_predict(
                    system, f, tr, {"test": f.get(system.feature_set)[te]}, labels, y, seed=seed
                )
                runs.setdefault(("1 TESS random 80/20", system.name), []).append(
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
                runs.setdefault(("2 TESS cross-speaker", system.name), []).append(
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
                runs.setdefault(("3 RAVDESS actor-independent, 7 labels", system.name), []).append(
                    score(out["clean"], y[te], labels)
                )
                for noise in tests:
                    if noise != "clean":
                        runs.setdefault(
                            (f"6 RAVDESS 7 labels + {noise} dB", system.name), []
                        ).append(score(out[noise], y[te], labels))
            # 3. RAVDESS 8 classes (benchmark only: "calm" is not a product label).
            f8, y8, labels8 = feats["rav8"], ys["rav8"], label_sets["rav8"]
            for _, tr, te in ravdess_folds(rav8) if "ravdess" in args.protocols else ():
                out = train_predict(
                    system, f8, tr, {"test": f8.get(system.feature_set)[te]}, labels8, y8, seed=seed
                )
                runs.setdefault(("3 RAVDESS actor-independent, 8 classes", system.name), []).append(
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
            for name, tr_mask, te_mask in (
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
                runs.setdefault((f"4 cross-corpus {name}", system.name), []).append(
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
                    runs.setdefault(
                        (f"5 pooled, held-out {corpus} speakers", system.name), []
                    ).append(score(out["test"], yb[fold.test], labelsb))
    for (protocol, system_name), items in runs.items():
        results[protocol][system_name] = pooled(items)
    return dict(results)


#: Issue 3's targets: (what, protocol, UA threshold in %, or None for "as high as possible").
UA_TARGETS = (
    ("RAVDESS actor-independent, 8 classes", "3 RAVDESS actor-independent, 8 classes", 76.0),
    ("TESS cross-speaker (OAF->YAF, YAF->OAF)", "2 TESS cross-speaker", 90.0),
    ("cross-corpus TESS -> RAVDESS", "4 cross-corpus TESS -> RAVDESS", None),
    ("cross-corpus RAVDESS -> TESS", "4 cross-corpus RAVDESS -> TESS", None),
)
NOISE_TARGET_POINTS = 5.0


def _at_least(threshold: float) -> Callable[[float], str]:
    def judge(got: float) -> str:
        return "yes" if got >= threshold else f"**no**, {threshold - got:.1f} points short"

    return judge


def _noise_cost_verdict(cost: float) -> str:
    if cost <= NOISE_TARGET_POINTS:
        return "yes"
    return f"**no**, costs {cost - NOISE_TARGET_POINTS:.1f} points more than allowed"


def targets_table(results: dict[str, Any], systems: list[str]) -> str:
    """Measured UA next to each issue-3 target, for every system, with a plain verdict for
    each system that is not the paper's (named when there are several)."""
    judged = [s for s in systems if s != "paper"] or systems[:1]
    lines = [
        "| target | " + " | ".join(systems) + " | met? |",
        "|---|" + "---|" * (len(systems) + 1),
    ]

    def ua(protocol: str, system: str) -> float | None:
        row = results.get(protocol, {}).get(system)
        return None if row is None else 100 * row["unweighted_accuracy"]

    def verdicts(got: dict[str, float | None], judge: Callable[[float], str], missing: str) -> str:
        each = [missing if (value := got[s]) is None else judge(value) for s in judged]
        if len(each) == 1:
            return each[0]
        return "; ".join(f"{s}: {v}" for s, v in zip(judged, each, strict=True))

    for what, protocol, threshold in UA_TARGETS:
        measured = {s: ua(protocol, s) for s in systems}
        cells = ["n/a" if measured[s] is None else f"{measured[s]:.1f}" for s in systems]
        verdict = "no fixed target"
        if threshold is not None:
            verdict = verdicts(measured, _at_least(threshold), "not measured in this run")
        goal = f"UA >= {threshold:.0f}%" if threshold else "UA as high as possible"
        lines.append(f"| {what}: {goal} | " + " | ".join(cells) + f" | {verdict} |")
    clean = "3 RAVDESS actor-independent, 7 labels"
    for noise in ("white@10", "babble@10"):
        protocol = f"6 RAVDESS 7 labels + {noise} dB"
        costs: dict[str, float | None] = {}
        for s in systems:
            a, b = ua(clean, s), ua(protocol, s)
            costs[s] = None if a is None or b is None else a - b
        cells = ["n/a" if costs[s] is None else f"-{costs[s]:.1f} points" for s in systems]
        verdict = verdicts(
            costs, _noise_cost_verdict, "not measured in this run (--quick skips noise)"
        )
        lines.append(
            f"| {noise.replace('@', ' noise at ')} dB SNR costs <= {NOISE_TARGET_POINTS:.0f} UA "
            "points (RAVDESS 7 labels) | " + " | ".join(cells) + f" | {verdict} |"
        )
    return "\n".join(lines)


def write_report(
    results: dict[str, Any],
    args: argparse.Namespace,
    seconds: float,
    *,
    command: str | None = None,
    note: str = "",
) -> None:
    DOCS.mkdir(exist_ok=True)
    (DOCS / "img").mkdir(exist_ok=True)
    command = command or " ".join(["python", *sys.argv])
    (DOCS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "command": command,
                "systems": list(args.systems),
                "seeds": args.seeds,
                "seconds": round(seconds),
                "note": note,
                "results": results,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    systems = list(args.systems)
    header = (
        "| protocol | "
        + " | ".join(f"{s} UA" for s in systems)
        + " | "
        + " | ".join(f"{s} acc / F1 / ECE" for s in systems)
        + " |"
    )
    lines = [header, "|" + "---|" * (1 + 2 * len(systems))]
    for protocol in sorted(results):
        row = results[protocol]
        ua = [
            f"{100 * row[s]['unweighted_accuracy']:.1f} ± {100 * row[s]['unweighted_accuracy_std']:.1f}"
            if s in row
            else ""
            for s in systems
        ]
        rest = [
            f"{100 * row[s]['accuracy']:.1f} / {100 * row[s]['macro_f1']:.1f} / {row[s]['ece']:.3f}"
            if s in row
            else ""
            for s in systems
        ]
        lines.append(f"| {protocol} | " + " | ".join(ua) + " | " + " | ".join(rest) + " |")
    recall_lines = []
    for protocol in sorted(results):
        for s in systems:
            if s in results[protocol]:
                r = results[protocol][s]["per_class_recall"]
                recall_lines.append(
                    f"| {protocol} | {s} | "
                    + ", ".join(f"{k} {100 * v:.0f}" for k, v in r.items())
                    + " |"
                )
    if args.out == "accuracy":  # the full report's plots; a focused rerun leaves them alone
        plot_confusions(results, systems)
    desc = "\n".join(f"- **{s}**: {SYSTEMS[s].description}" for s in systems)
    plots = "; plots in `docs/img/`" if args.out == "accuracy" else " (no plots for a focused run)"
    text = f"""# Accuracy benchmark

Command: `{command}` ({round(seconds / 60)} min on 2 shared CPU cores; seeds {args.seeds}).
{note}
UA = unweighted accuracy (mean per-class recall, the primary figure), mean ± standard deviation over
folds and seeds. ECE = expected calibration error of the returned (temperature-scaled) probabilities.
Raw results, per fold summaries and confusion matrices: `docs/{args.out}.json`{plots}.

Systems, trained and tested in the same run:
{desc}

## Targets (issue 3), measured

{targets_table(results, systems)}

Features + inference time of a 3 s clip on one core (target < 10 ms): see
`docs/accuracy-latency.md` (`bench/accuracy_latency.py`).
What we kept, why the targets are missed, caveats: `docs/accuracy-notes.md`.

## All protocols

{chr(10).join(lines)}

Per-class recall (%):

| protocol | system | recall |
|---|---|---|
{chr(10).join(recall_lines)}
"""
    (DOCS / f"{args.out}.md").write_text(text)


def plot_confusions(results: dict[str, Any], systems: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for protocol, row in results.items():
        for s in systems:
            if s not in row:
                continue
            conf = np.array(row[s]["confusion"], dtype=float)
            norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
            labels = row[s]["labels"]
            fig, ax = plt.subplots(figsize=(5, 4.4))
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
            ax.set_yticks(range(len(labels)), labels)
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(
                f"{protocol}\n{s}: UA {100 * row[s]['unweighted_accuracy']:.1f}%", fontsize=8
            )
            fig.tight_layout()
            slug = "".join(ch if ch.isalnum() else "-" for ch in f"{protocol}-{s}".lower()).strip(
                "-"
            )
            fig.savefig(DOCS / "img" / f"confusion-{slug}.png", dpi=80)
            plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument(
        "--systems",
        nargs="+",
        default=["paper", DEFAULT_RECIPE, ACCURATE_MODEL_RECIPE],
        choices=sorted(SYSTEMS),
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("trainer").setLevel(logging.WARNING)
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
            note=args.note or saved.get("note", ""),
        )
    else:
        start = time.time()
        load = os.getloadavg()[0]
        results = run(args)
        note = f"Load average at start {load:.1f}. {args.note}".strip()
        write_report(results, args, time.time() - start, note=note)
    print((DOCS / f"{args.out}.md").read_text())


if __name__ == "__main__":
    main()
