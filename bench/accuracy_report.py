"""The accuracy benchmark's report: leave-one-corpus-out UA first, then the targets, every
protocol, calibration, per-class recall and confusion matrices (``<out>.md``, ``<out>.json``
and, for the full report, ``img/``)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The eGeMAPS + linear SVM reference's name among the systems (bench.egemaps).
REFERENCE = "egemaps-svm"
CORPUS_NAMES = {
    "tess": "TESS",
    "ravdess": "RAVDESS",
    "emodb": "EmoDB",
    "emovo": "EMOVO",
    "turevdb": "TurEV-DB",
}


def corpus_name(corpus: str) -> str:
    return CORPUS_NAMES.get(corpus, corpus)


# The results' protocol names, as the runner files figures under them.
def loco_key(corpus: str) -> str:
    return f"LOCO, held-out {corpus_name(corpus)}"


LOCO_MEAN = "LOCO, mean over the held-out corpora"
RAV8 = "RAVDESS actor-independent, 8 classes"
RAV7 = "RAVDESS actor-independent, 7 labels"


def noise_key(noise: str) -> str:
    return f"RAVDESS 7 labels + {noise} dB"


TESS_XS = "TESS cross-speaker"


def pooled_key(corpus: str) -> str:
    return f"pooled, held-out {corpus_name(corpus)} speakers"


POOLED_ALL = "pooled, every held-out speaker"
POOLED_MEAN = "pooled, mean over the corpora"
PAPER_PROTOCOL = "TESS random 80/20 (the paper's protocol)"
#: A smoke run's training: at most this many epochs, one network, one augmented copy.
QUICK_EPOCHS = 8
#: Pooled folds: two, so that every fold holds out speakers of every corpus (TESS has two).
POOLED_FOLDS = 2

#: The targets: (what, protocol, UA threshold in %).
UA_TARGETS = (
    ("LOCO mean over the five corpora", LOCO_MEAN, 60.0),
    ("RAVDESS actor-independent, 8 classes", RAV8, 76.0),
    ("TESS cross-speaker (each voice held out in turn)", TESS_XS, 90.0),
)
NOISE_TARGETS = ("white@10", "babble@10")
NOISE_TARGET_POINTS = 5.0
REFERENCE_DESCRIPTION = (
    "openSMILE's eGeMAPS v02 functionals (88 values per clip), standardised, linear SVM "
    "(C = 0.1, balanced class weights): the field's standard reference, trained and tested on "
    "the same folds (no probabilities, so no ECE). A reference only, never served: openSMILE's "
    "licence permits research use only."
)

PROTOCOL_TABLE = f"""| protocol | trains on | tests on | scored over |
|---|---|---|---|
| leave one corpus out (LOCO), the headline | four of the five corpora | the fifth, each in turn | the held-out corpus's own labels (TurEV-DB 4, EmoDB 6, the others 7): the answer is the best of those |
| RAVDESS actor-independent | the other four corpora and 20 RAVDESS actors, calm kept as its own class (only RAVDESS has it) | the 4 held-out actors; 6 folds cover all 24 | 8 classes; 7 labels = the same answers with calm counted as neutral (probabilities added) |
| noise | the RAVDESS folds' models | the same held-out clips with white noise or babble mixed in at 10 dB SNR | 7 labels; the cost is the clean UA minus the noisy UA |
| TESS cross-speaker | one TESS voice and the other four corpora | the other TESS voice, both ways | 7 labels |
| pooled, speaker-independent | the five corpora pooled, minus the held-out speakers | half of every corpus's speakers ({POOLED_FOLDS} folds; TESS: one voice each) | each corpus's own labels; the bundled models' regime; calibration (ECE) is read here |
| {PAPER_PROTOCOL} | a stratified 80% of TESS (TESS only, as the paper) | the other 20%: the same two voices | 7 labels; memory of two voices, not generalisation |"""


def _cell(row: Mapping[str, Any] | None, *, spread: bool = True) -> str:
    """``UA (min-max over seeds)`` in %, or ``n/a``."""
    if row is None:
        return "n/a"
    text = f"{100 * row['unweighted_accuracy']:.1f}"
    if spread and row.get("seed_min") is not None and row.get("seed_max") is not None:
        lo, hi = f"{100 * row['seed_min']:.1f}", f"{100 * row['seed_max']:.1f}"
        if lo != hi:  # one seed, or seeds that agree: no bracket
            text += f" ({lo}-{hi})"
    return text


def column_order(systems: Sequence[str]) -> list[str]:
    """The paper's recipe first, then the requested systems, then the reference."""
    middle = [s for s in systems if s not in ("paper", REFERENCE)]
    return [s for s in ("paper",) if s in systems] + middle + [REFERENCE] * (REFERENCE in systems)


def judged_systems(systems: Sequence[str]) -> list[str]:
    """Systems that get a verdict: the product's, not the paper's recipe or the reference
    (both are there to compare against); the paper's alone if nothing else ran."""
    return [s for s in systems if s not in ("paper", REFERENCE)] or list(systems[:1])


def loco_table(results: Mapping[str, Any], systems: Sequence[str], corpora: Sequence[str]) -> str:
    """UA per held-out corpus and the mean over them, systems as columns."""
    lines = [
        "| held-out corpus (its labels) | " + " | ".join(_label(s) for s in systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for corpus in corpora:
        row = results.get(loco_key(corpus), {})
        n_labels = next((len(r["labels"]) for r in row.values() if "labels" in r), None)
        what = corpus_name(corpus) + (f" ({n_labels})" if n_labels else "")
        lines.append(f"| {what} | " + " | ".join(_cell(row.get(s)) for s in systems) + " |")
    mean = results.get(LOCO_MEAN, {})
    lines.append("| **mean** | " + " | ".join(f"**{_cell(mean.get(s))}**" for s in systems) + " |")
    return "\n".join(lines)


def _at_least(threshold: float) -> Callable[[float], str]:
    def judge(got: float) -> str:
        return "yes" if got >= threshold else f"**no**, {threshold - got:.1f} points short"

    return judge


def _noise_cost_verdict(cost: float) -> str:
    if cost <= NOISE_TARGET_POINTS:
        return "yes"
    return f"**no**, costs {cost - NOISE_TARGET_POINTS:.1f} points more than allowed"


def noise_cost(results: Mapping[str, Any], noise: str, system: str) -> dict[str, Any] | None:
    """Clean minus noisy RAVDESS 7-label UA in points: the mean over seeds and each seed's
    (seed by seed, on the same models), or None when either was not measured."""
    clean = results.get(RAV7, {}).get(system)
    noisy = results.get(noise_key(noise), {}).get(system)
    if clean is None or noisy is None:
        return None
    seeds = sorted(set(clean.get("seeds", {})) & set(noisy.get("seeds", {})), key=int)
    if seeds:
        per_seed = [100 * (clean["seeds"][s] - noisy["seeds"][s]) for s in seeds]
    else:
        per_seed = [100 * (clean["unweighted_accuracy"] - noisy["unweighted_accuracy"])]
    return {"mean": float(np.mean(per_seed)), "min": min(per_seed), "max": max(per_seed)}


def targets_table(results: Mapping[str, Any], systems: Sequence[str]) -> str:
    """Measured figures next to each target, systems as columns, with a verdict for each
    judged system (named when there are several)."""
    judged = judged_systems(systems)
    lines = [
        "| target | " + " | ".join(_label(s) for s in systems) + " | met? |",
        "|---|" + "---|" * (len(systems) + 1),
    ]

    def verdicts(got: dict[str, float | None], judge: Callable[[float], str], missing: str) -> str:
        each = [missing if (value := got[s]) is None else judge(value) for s in judged]
        if len(each) == 1:
            return each[0]
        return "; ".join(f"{s}: {v}" for s, v in zip(judged, each, strict=True))

    for what, protocol, threshold in UA_TARGETS:
        row = results.get(protocol, {})
        measured = {
            s: None if s not in row else 100 * row[s]["unweighted_accuracy"] for s in systems
        }
        cells = [_cell(row.get(s)) for s in systems]
        verdict = verdicts(measured, _at_least(threshold), "not measured in this run")
        lines.append(f"| {what}: UA >= {threshold:.0f}% | " + " | ".join(cells) + f" | {verdict} |")
    for noise in NOISE_TARGETS:
        costs = {s: noise_cost(results, noise, s) for s in systems}
        cells = []
        for s in systems:
            cost = costs[s]
            if cost is None:
                cells.append("n/a")
                continue
            text = f"{cost['mean']:.1f} points"
            lo, hi = f"{cost['min']:.1f}", f"{cost['max']:.1f}"
            if lo != hi:
                text += f" ({lo} to {hi})"
            cells.append(text)
        verdict = verdicts(
            {s: None if (c := costs[s]) is None else c["mean"] for s in systems},
            _noise_cost_verdict,
            "not measured in this run",
        )
        kind, snr = noise.split("@")
        lines.append(
            f"| {'white noise' if kind == 'white' else kind} at {snr} dB SNR costs <= "
            f"{NOISE_TARGET_POINTS:.0f} UA points (RAVDESS 7 labels) | "
            + " | ".join(cells)
            + f" | {verdict} |"
        )
    return "\n".join(lines)


def protocol_order(results: Mapping[str, Any], corpora: Sequence[str]) -> list[str]:
    """The protocols in reading order: LOCO, RAVDESS and its noise, TESS, pooled, the paper's;
    anything else (a saved run of another protocol set) after them, by name."""
    order = [loco_key(c) for c in corpora] + [LOCO_MEAN, RAV8, RAV7]
    order += sorted(k for k in results if k.startswith("RAVDESS 7 labels + "))
    order += [TESS_XS] + [pooled_key(c) for c in corpora] + [POOLED_ALL, POOLED_MEAN]
    order.append(PAPER_PROTOCOL)
    known = [k for k in order if k in results]
    return known + sorted(k for k in results if k not in known)


def headline_plots(corpora: Sequence[str]) -> list[str]:
    """The protocols that get confusion images: the headline and target protocols."""
    return [loco_key(c) for c in corpora] + [RAV8, TESS_XS]


def _label(system: str) -> str:
    return "eGeMAPS + SVM" if system == REFERENCE else system


def write_report(
    results: dict[str, Any],
    args: argparse.Namespace,
    seconds: float,
    *,
    command: str,
    descriptions: Mapping[str, str],
    note: str = "",
    costs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<out_dir>/<out>.json`` and ``.md`` (and the confusion images of the headline
    protocols, for the full report); returns the Markdown file.

    ``descriptions`` says what each system in ``args.systems`` is; ``command`` is quoted as
    what produced the figures; ``costs`` gives the minutes each part of the run took.
    """
    out_dir = Path(getattr(args, "out_dir", None) or DOCS)
    out_dir.mkdir(parents=True, exist_ok=True)
    systems = column_order(list(args.systems))
    corpora = [c for c in getattr(args, "corpora", None) or CORPUS_NAMES]
    quick = bool(getattr(args, "quick", False))
    (out_dir / f"{args.out}.json").write_text(
        json.dumps(
            {
                "command": command,
                "systems": list(args.systems),
                "seeds": args.seeds,
                "seconds": round(seconds),
                "quick": quick,
                "cores": getattr(args, "cores", None) or os.cpu_count(),
                "note": note,
                "costs": costs or {},
                "results": results,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    plots = args.out == "accuracy" and not quick
    if plots:  # the full report's images; a focused or smoke run leaves them alone
        plot_confusions(results, systems, headline_plots(corpora), out_dir / "img")
    order = protocol_order(results, corpora)
    lines = [
        "| protocol | "
        + " | ".join(f"{_label(s)} UA" for s in systems)
        + " | "
        + " | ".join(f"{_label(s)} acc / F1 / ECE" for s in systems)
        + " |",
        "|" + "---|" * (1 + 2 * len(systems)),
    ]
    for protocol in order:
        row = results[protocol]
        ua = [
            ""
            if s not in row
            else _cell(row[s])
            + (
                f" ± {100 * row[s]['unweighted_accuracy_std']:.1f}"
                if row[s].get("unweighted_accuracy_std") is not None
                else ""
            )
            for s in systems
        ]
        rest = [_rest(row.get(s)) for s in systems]
        lines.append(f"| {protocol} | " + " | ".join(ua) + " | " + " | ".join(rest) + " |")
    recall_lines = []
    for protocol in order:
        for s in systems:
            recall = results[protocol].get(s, {}).get("per_class_recall")
            if recall:
                recall_lines.append(
                    f"| {protocol} | {_label(s)} | "
                    + ", ".join(f"{k} {100 * v:.0f}" for k, v in recall.items())
                    + " |"
                )
    if quick:
        brief = "; in this smoke run trained briefly (see above)"
        descriptions = {name: text + brief for name, text in descriptions.items()}
    descriptions = {**descriptions, REFERENCE: REFERENCE_DESCRIPTION}
    desc = "\n".join(
        f"- **{_label(s)}**: {descriptions.get(s, 'a recipe this tree no longer holds')}"
        for s in systems
    )
    reference_note = getattr(args, "reference_note", "") or ""
    seeds = ", ".join(str(s) for s in args.seeds)
    cores = getattr(args, "cores", None) or os.cpu_count()
    smoke = (
        "\n**Smoke run** (`--quick`): one seed, fewer protocols, and each network trained for at "
        f"most {QUICK_EPOCHS} epochs, one network instead of an ensemble, one augmented copy at "
        "most. It checks that the benchmark runs end to end; its figures are not the recipes' "
        "accuracy.\n"
        if quick
        else ""
    )
    cost_lines = ""
    if costs:
        cost_lines = "\nMinutes per part of this run (features are extracted once and cached):\n\n"
        cost_lines += "\n".join(
            f"- {name}: " + ", ".join(f"{part} {value / 60:.1f}" for part, value in parts.items())
            for name, parts in costs.items()
        )
        cost_lines += "\n"
    img = (
        "; confusion images of the headline protocols in `img/`"
        if plots
        else " (no images for a focused or smoke run)"
    )
    text = f"""# Accuracy benchmark

Command: `{command}` ({seconds / 60:.0f} min on {cores} shared CPU cores; seeds {seeds}).
{note}
{smoke}
UA = unweighted accuracy (mean per-class recall, the primary figure), in %. With several seeds a
figure is the mean over seeds, with the lowest and highest seed in brackets; ± is the standard
deviation over folds (and seeds). ECE = expected calibration error of the returned
(temperature-scaled) probabilities. Raw results, per-seed figures and confusion matrices:
`{args.out}.json`{img}.

## Leave one corpus out

Each corpus in turn is held out: the system trains on the other four and answers on the fifth,
recorded by other people, in another studio and, for three of the five, another language. The
answer is the best of the labels the held-out corpus has, and UA is over those labels.

{loco_table(results, systems, corpora)}

## Targets, measured

{targets_table(results, systems)}

## Systems

Trained and tested on the same folds in the same run:
{desc}
{reference_note}

## Protocols

{PROTOCOL_TABLE}

Babble is four TESS talkers mixed at equal power with random offsets; the noisy test sets use
other TESS clips than the training copies' babble (when TESS is the held-out corpus, its voices
are in the training copies' babble, never as speech with a label). Every network keeps the
weights of its best epoch on held-out training speakers and is calibrated on them (temperature
scaling), as `ser-train` does.
{cost_lines}
## Calibration

ECE on the pooled folds (every held-out speaker, probabilities over each corpus's own labels):

{calibration_table(results, systems)}

## Every protocol

{chr(10).join(lines)}

## Per-class recall

In %, pooled over folds and seeds:

| protocol | system | recall |
|---|---|---|
{chr(10).join(recall_lines)}
"""
    path = out_dir / f"{args.out}.md"
    path.write_text(text)
    return path


def _rest(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return ""
    ece = "n/a" if row.get("ece") is None else f"{row['ece']:.3f}"
    accuracy = "n/a" if row.get("accuracy") is None else f"{100 * row['accuracy']:.1f}"
    f1 = "n/a" if row.get("macro_f1") is None else f"{100 * row['macro_f1']:.1f}"
    return f"{accuracy} / {f1} / {ece}"


def calibration_table(results: Mapping[str, Any], systems: Sequence[str]) -> str:
    row = results.get(POOLED_ALL, {})
    lines = ["| system | ECE before scaling | ECE returned |", "|---|---|---|"]
    for s in systems:
        if s not in row:
            continue
        if row[s].get("ece") is None:
            lines.append(f"| {_label(s)} | n/a (no probabilities) | n/a |")
            continue
        lines.append(f"| {_label(s)} | {row[s]['ece_raw']:.3f} | {row[s]['ece']:.3f} |")
    if len(lines) == 2:
        return "Not measured in this run (the pooled protocol did not run)."
    return "\n".join(lines)


def plot_confusions(
    results: Mapping[str, Any], systems: Sequence[str], protocols: Sequence[str], folder: Path
) -> None:
    """One image per (protocol, system) of ``protocols``; earlier confusion images that this
    report no longer draws are removed, so the folder matches the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for protocol in protocols:
        row = results.get(protocol, {})
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
                f"{protocol}\n{_label(s)}: UA {100 * row[s]['unweighted_accuracy']:.1f}%",
                fontsize=8,
            )
            fig.tight_layout()
            name = f"confusion-{slug(f'{protocol}-{s}')}.png"
            fig.savefig(folder / name, dpi=80)
            plt.close(fig)
            written.add(name)
    for stale in folder.glob("confusion-*.png"):
        if stale.name not in written:
            stale.unlink()


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
