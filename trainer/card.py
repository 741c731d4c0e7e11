"""The model card: what the model is for, what it was trained on, how well it does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service import contract
from service.features import PACKED_SUFFIX
from trainer.config import TrainConfig

KNOWN_LICENCES = {
    "tess": "TESS (Dupuis & Pichora-Fuller, University of Toronto, 2010), CC BY-NC-ND 4.0, doi:10.5683/SP2/E8H2MF",
    "ravdess": "RAVDESS (Livingstone & Russo, 2018, PLoS ONE 13(5): e0196391), CC BY-NC-SA 4.0, doi:10.5281/zenodo.1188976",
    "emodb": "EmoDB (Burkhardt et al., Interspeech 2005), German, free for research use",
    "emovo": "EMOVO (Costantini et al., LREC 2014), Italian, research use",
    "turevdb": "TurEV-DB (Canpolat, Ormanoglu & Zeyrek, SLTU-CCURL 2020), Turkish, CC BY-NC-ND 4.0",
}

#: The language of each corpus ``ser-train`` reads by name.
LANGUAGES = {
    "tess": "English",
    "ravdess": "English",
    "emodb": "German",
    "emovo": "Italian",
    "turevdb": "Turkish",
}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def results_table(evaluation: dict[str, Any]) -> str:
    rows = [
        "| protocol | held-out data | folds | UA (mean ± sd) | accuracy | macro-F1 |",
        "|---|---|---|---|---|---|",
    ]
    for protocol, result in evaluation.items():
        for group, s in result["summary"].items():
            rows.append(
                f"| {protocol} | {group} | {s['folds']} | {_pct(s['unweighted_accuracy'])} ± "
                f"{_pct(s['unweighted_accuracy_std'])} | {_pct(s['accuracy'])} | {_pct(s['macro_f1'])} |"
            )
        if protocol == "loco" and result["summary"]:
            # The headline: every corpus counts once, however many clips it has.
            uas = [s["unweighted_accuracy"] for s in result["summary"].values()]
            rows.append(
                f"| loco | **mean of the {len(uas)} corpora** | {len(uas)} | "
                f"**{_pct(sum(uas) / len(uas))}** | | |"
            )
    return "\n".join(rows)


def _calibration(metadata: dict[str, str]) -> str:
    temperature = metadata.get(contract.KEY_TEMPERATURE)
    if temperature is None:
        return "none; `confidence` is the raw softmax output."
    return (
        f"temperature {temperature}, fitted on the validation speakers and applied inside the "
        "graph, so `confidence` is a calibrated probability."
    )


def _ece(evaluation: dict[str, Any]) -> str:
    parts = []
    for protocol, result in evaluation.items():
        for group, fold_metrics in _grouped_folds(result).items():
            values = [m["ece"] for m in fold_metrics if "ece" in m]
            if values:
                parts.append(f"{protocol}/{group} {sum(values) / len(values):.3f}")
    return ", ".join(parts) or "not measured"


def _grouped_folds(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for name, metrics in result.get("folds", {}).items():
        group = "all" if "-speaker-" not in name else name.split("-speaker-")[0]
        grouped.setdefault(group, []).append(metrics)
    return grouped


def rewrite_card(model_path: Path) -> None:
    """Re-render the card beside ``model_path`` from its metadata, metrics and config."""
    import onnx

    from trainer.config import TrainConfig

    proto = onnx.load(str(model_path))
    metadata = {p.key: p.value for p in proto.metadata_props}
    stem = model_path.with_suffix("")
    evaluation = json.loads(Path(f"{stem}.metrics.json").read_text())
    raw = json.loads(Path(f"{stem}.train.json").read_text())["config"]
    raw["hidden"], raw["augmentations"] = tuple(raw["hidden"]), tuple(raw.get("augmentations", ()))
    write_card(
        model_path.with_suffix(".card.md"),
        metadata=metadata,
        evaluation=evaluation,
        config=TrainConfig(**raw),
    )


def _ensemble(config: TrainConfig) -> str:
    if config.ensemble <= 1:
        return ""
    last = config.seed + config.ensemble - 1
    return (
        f"\n  Ensemble: {config.ensemble} such networks (seeds {config.seed}-{last}), "
        "probabilities averaged inside the graph."
    )


def _fusion(config: TrainConfig) -> str:
    if not config.fuse_statistics:
        return ""
    weight = config.fuse_statistics
    return (
        "\n  Fused: the same training again on the feature set's statistics alone (the features "
        "ahead of the encoder's outputs); each network calibrated, their probabilities averaged "
        f"inside the graph ({1 - weight:.3g} on the one reading every feature, {weight:.3g} on "
        "the statistics' one), and the average calibrated in turn."
    )


def _regularisers(config: TrainConfig) -> str:
    parts = []
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    if config.mixup:
        parts.append(f"mixup of clips within each batch, Beta({config.mixup:g}, {config.mixup:g})")
    return f"\n  Regularised by {' and '.join(parts)}." if parts else ""


def _corpus_mix(config: TrainConfig) -> str:
    parts = []
    if config.mask_absent_labels:
        parts.append(
            "each clip's loss is taken over its own corpus's labels (a corpus without a label "
            "never pushes a clip away from it)"
        )
    if config.balance != "none":
        parts.append(f"each {config.balance} carries equal total weight (times class weights)")
    return f"\n  Corpora mixed: {'; '.join(parts)}." if parts else ""


def _encoder_licence(metadata: dict[str, str]) -> list[str]:
    """The pretrained encoders a feature set runs, if any: their own licences travel too."""
    config = json.loads(metadata[contract.KEY_FEATURE_CONFIG])
    encoders = config.get("encoders") or ([config["encoder"]] if config.get("encoder") else [])
    lines = []
    for encoder in encoders:
        # GE2E's configuration predates the licence field; its text ships beside it.
        licence = encoder.get("licence") or "Apache-2.0: service/encoders/LICENSE-resemblyzer"
        lines.append(
            f"Pretrained component: {encoder['source']} (weights in `service/encoders/"
            f"{encoder['file']}`, stored packed as `{encoder['file']}{PACKED_SUFFIX}`; SHA-256 "
            f"`{encoder['sha256'][:16]}…`; licence {licence}). Its licence permits commercial "
            "use; the corpora above do not."
        )
    if encoders:
        lines.append(
            "Cost: the pretrained encoders run over every frame of the clip, several times the "
            "CPU per clip of the statistics alone (docs/performance.md)."
        )
    return lines


def write_card(
    path: Path,
    *,
    metadata: dict[str, str],
    evaluation: dict[str, Any],
    config: TrainConfig,
    licences: Sequence[str] = (),
) -> None:
    data = json.loads(metadata[contract.KEY_TRAINING_DATA])
    labels = json.loads(metadata[contract.KEY_LABELS])
    corpora = "\n".join(
        f"- **{name}**: {info['clips']} clips, {info['speakers']} speakers; labels {info['labels']}. "
        f"{KNOWN_LICENCES.get(name, 'Licence: as given by its owner.')}"
        for name, info in data["corpora"].items()
    )
    extra = "\n".join(f"- {line}" for line in [*licences, *_encoder_licence(metadata)])
    languages = ", ".join(sorted({LANGUAGES.get(name, "unknown") for name in data["corpora"]}))
    text = f"""# Model card: {metadata[contract.KEY_MODEL_NAME]}

- Version: `{metadata[contract.KEY_MODEL_VERSION]}` (created {metadata[contract.KEY_CREATED]})
- Labels, in output order: {", ".join(labels)}
- Features: `{metadata[contract.KEY_FEATURE_SET]}` (full configuration in the ONNX metadata `{contract.KEY_FEATURE_CONFIG}`)
- Network: `{config.architecture}`, hidden {list(config.hidden)}, dropout {config.dropout}; Adam lr {config.learning_rate},
  {config.epochs} epochs, batch {config.batch_size}, seed {config.seed}; class weights {config.class_weights};
  best epoch on speaker-disjoint validation kept; input standardisation inside the graph.{_ensemble(config)}{_fusion(config)}{_regularisers(config)}{_corpus_mix(config)}
- Augmentation: {", ".join(config.augmentations) or "none"} (each a copy of the training clips,
  featurised by the same feature module).
- Calibration: {_calibration(metadata)}

## Licence: non-commercial

This model was trained on corpora licensed for **non-commercial use only**, and inherits that
restriction. Do not use it commercially.

{corpora}
{extra}

## Evaluation

UA is unweighted accuracy (mean per-class recall), the primary figure. `random` is the paper's
stratified 80/20 split: the same speakers appear in training and test, so it measures memory of
voices. `speaker` holds speakers out (TESS: train on one speaker, test on the other; RAVDESS:
six folds of four held-out actors), which is what a new user's voice looks like. `loco` leaves
one corpus out (trains on the others, tests on it, scored over its own labels): another language,
other actors and another studio, the closest figure here to recordings from elsewhere.

{results_table(evaluation)}

Expected calibration error of the returned probabilities: {_ece(evaluation)}.

Per-fold figures, per-class recall and confusion matrices: `{path.name.replace(".card.md", ".metrics.json")}`.

## Intended use and limits

- For research and prototyping on short (0.5-10 s) single-speaker speech clips in the
  languages of its training corpora ({languages}).
- Trained on *acted* emotions from a few speakers in quiet studios; expect lower accuracy on
  spontaneous speech, other languages, accents, ages, noisy or compressed audio.
- Not for decisions about people (hiring, policing, health, credit): emotion inferred from voice
  is unreliable and culturally variable.
"""
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:]:
        rewrite_card(Path(arg))
