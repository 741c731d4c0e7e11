"""Variants of the pretrained voice encoder beside ``speech-stats-v2`` (bench only).

The encoder is Resemblyzer's GE2E speaker encoder (``resemblyzer==0.1.4`` on PyPI,
Apache-2.0; a 3-layer LSTM of 256 over 40 mel bands, trained for speaker verification), shipped
as ``service/encoders/resemblyzer-ge2e.onnx`` and run by the ``speech-stats-v2+ge2e`` feature
set of ``service/features.py``; the opt-in ``models/ser-accurate.onnx`` runs it with its last two
LSTM layers in int8 (``speech-stats-v2+ge2e-int8``). This script runs that feature set's
variants the service does not serve: the encoder on every frame (the served set trims the quiet
edges first), subsets of its outputs, the encoder with all three layers under onnxruntime's
dynamic int8 quantisation (which wrecks it), and the int8 recipe fused with a network on the
statistics alone, under the names their rows were logged as. Results and reading:
docs/accuracy-notes.md, rows in docs/ablation.jsonl. (The rows before the encoder moved into
the service came from a copy of its front end on librosa; the service's gives the same features
within 5e-6, checked on corpus clips.)

    .venv/bin/python bench/voice_encoder.py ablate [VARIANT ...] [bench/ablation.py's options]
    .venv/bin/python bench/voice_encoder.py accuracy [bench/accuracy.py's options]
    .venv/bin/python bench/voice_encoder.py cost
    .venv/bin/python bench/voice_encoder.py fidelity [--every 20]

The all-layer int8 encoder is written to ``$SER_VOICE_ENCODER_INT8`` or
``~/.cache/ser/voice-encoder/resemblyzer-ge2e-int8-all-layers.onnx`` on first use; its SHA-256
goes into the variant's feature configuration, so the feature cache never mixes encoders.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ablation, accuracy  # noqa: E402
from bench.export_voice_encoder import quantize  # noqa: E402
from service import features  # noqa: E402
from service.features import (  # noqa: E402
    FEATURE_SETS,
    StatsWithEncoder,
    VoiceEncoderConfig,
)
from trainer.corpora import default_data_root, read_ravdess, read_tess  # noqa: E402
from trainer.recipes import RECIPES  # noqa: E402

#: The float encoder's feature set and recipe (the first accurate model's); the variants below
#: are built on them.
FLOAT_FEATURE_SET = "speech-stats-v2+ge2e"
FLOAT_RECIPE = "speech-stats-v2-voices-ge2e"
#: The accurate model's: the same on the encoder with its last two LSTM layers in int8.
ACCURATE_FEATURE_SET = "speech-stats-v2+ge2e-int8"
ACCURATE_RECIPE = "speech-stats-v2-voices-ge2e-int8"
PARTS = VoiceEncoderConfig().parts
HIDDEN = VoiceEncoderConfig().hidden


def int8_encoder_path() -> Path:
    """The shipped encoder with all three LSTM layers under onnxruntime's dynamic int8
    quantisation, made on first use (3x faster on the LSTM, and far from the float outputs)."""
    cache = Path.home() / ".cache" / "ser" / "voice-encoder"
    default = cache / "resemblyzer-ge2e-int8-all-layers.onnx"
    target = Path(os.environ.get("SER_VOICE_ENCODER_INT8", default))
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        source = features.read_encoder(features.ENCODER_DIR / VoiceEncoderConfig().file)
        target.write_bytes(quantize(source, float_layers=0, per_channel=False))
    return target


def encoder_variant(
    name: str,
    parts: tuple[str, ...],
    *,
    int8: bool = False,
    edge_trim_db: float | None = VoiceEncoderConfig().edge_trim_db,
    base: str = FLOAT_FEATURE_SET,
) -> StatsWithEncoder:
    """The ``base`` feature set with only ``parts`` of the encoder's outputs, optionally on the
    all-layer int8 encoder or with another edge trim (None: the encoder sees every frame)."""
    served = FEATURE_SETS[base]
    assert isinstance(served, StatsWithEncoder)
    encoder = replace(served.config.encoder, parts=parts, edge_trim_db=edge_trim_db)
    if int8:
        path = int8_encoder_path()
        encoder = replace(
            encoder,
            # An absolute file name: the encoder is looked up as ENCODER_DIR / file.
            file=str(path),
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            source=f"{encoder.source}, onnxruntime quantize_dynamic int8",
        )
    return StatsWithEncoder(replace(served.config, name=name, encoder=encoder))


def register() -> None:
    """Add the encoder variants to bench/ablation.py's and to the recipes bench/accuracy.py can
    run. Called by main() before any extraction worker is forked, so the workers know them
    too; not at import, so that importing this module (the tests do) changes no registry and
    makes no int8 file."""
    # The served recipe under the name its rows were logged as (the encoder on the clip's
    # span between the first and last frame within 40 dB of its loudest).
    served = replace(RECIPES[FLOAT_RECIPE], name="v2-voices+encoder-trim40")
    ablation.VARIANTS[served.name] = RECIPES[served.name] = served
    # The same on the int8 encoder the accurate model runs (last two LSTM layers int8).
    served_int8 = replace(RECIPES[ACCURATE_RECIPE], name="v2-voices+encoder-trim40-int8")
    ablation.VARIANTS[served_int8.name] = RECIPES[served_int8.name] = served_int8
    # The accurate model's features without the d-vector, the part trained to be the speaker:
    # does it cost the accurate model the unseen TESS speaker?
    name, feature_set = "v2-voices+encoder-trim40-int8-mean-std", "v2+encoder-int8-mean-std"
    FEATURE_SETS[feature_set] = encoder_variant(
        feature_set, ("mean", "std"), base=ACCURATE_FEATURE_SET
    )
    description = "the accurate model's recipe without the encoder's d-vector"
    ablation.VARIANTS[name] = RECIPES[name] = ablation._bundled_training(
        name, feature_set, description
    )
    for name, parts, int8 in (
        # The encoder on every frame, silent edges included (how it was first tried).
        ("v2-voices+encoder", PARTS, False),
        # Without the d-vector, which is trained to be the speaker's identity.
        ("v2-voices+encoder-mean-std", ("mean", "std"), False),
        # The frame spread alone: the least of the speaker's identity, if any part avoids it.
        ("v2-voices+encoder-std", ("std",), False),
        # What serving it at a third of the cost would give.
        ("v2-voices+encoder-int8", PARTS, True),
    ):
        # Untrimmed, as these variants were measured (docs/ablation.jsonl).
        feature_set = f"v2+encoder-{'-'.join(parts)}{'-int8' if int8 else ''}"
        FEATURE_SETS[feature_set] = encoder_variant(
            feature_set, parts, int8=int8, edge_trim_db=None
        )
        description = (
            f"speech-stats-v2 plus Resemblyzer's pretrained speaker encoder"
            f"{' (int8)' if int8 else ''} ({', '.join(parts)} of its last layer, every frame; "
            f"bench/voice_encoder.py), with the bundled recipe's training"
        )
        recipe = ablation._bundled_training(name, feature_set, description)
        ablation.VARIANTS[name] = RECIPES[name] = recipe
    # The accurate model's recipe fused with the default's network on the statistics alone
    # (the recipes speech-stats-v2-voices-ge2e-int8-fused*; the last with label smoothing),
    # under the names their rows were logged as.
    for recipe, name in (
        (f"{ACCURATE_RECIPE}-fused", "fused-default+accurate-int8"),
        (f"{ACCURATE_RECIPE}-fused-third", "fused-default-third+accurate-int8"),
        (
            f"{ACCURATE_RECIPE}-fused-third-smoothed",
            "fused-default-third+accurate-int8-label-smoothing",
        ),
    ):
        fused = replace(RECIPES[recipe], name=name)
        ablation.VARIANTS[fused.name] = RECIPES[fused.name] = fused
    # Twice the shipped smoothing: 0.1 cut what white noise costs by 2 points (thirteenth
    # session's question: does more cut it below 5 without costing a single training voice?).
    shipped = RECIPES[f"{ACCURATE_RECIPE}-fused-third-smoothed"]
    stronger = replace(
        shipped,
        name="fused-default-third+accurate-int8-label-smoothing-0.2",
        config=replace(shipped.config, label_smoothing=0.2),
        description=shipped.description.replace("label smoothing 0.1", "label smoothing 0.2"),
    )
    ablation.VARIANTS[stronger.name] = RECIPES[stronger.name] = stronger


def cost(seconds: float, repeats: int) -> None:
    """Median time of the encoder's features for one clip, one thread."""
    rng = np.random.default_rng(0)
    rate = VoiceEncoderConfig().spectral.sample_rate
    clip = (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    float32 = FEATURE_SETS[FLOAT_FEATURE_SET]
    int8 = FEATURE_SETS["v2+encoder-embedding-mean-std-int8"]
    served_int8 = FEATURE_SETS[ACCURATE_FEATURE_SET]
    assert isinstance(float32, StatsWithEncoder) and isinstance(int8, StatsWithEncoder)
    assert isinstance(served_int8, StatsWithEncoder)
    for name, run in {
        "speech-stats-v2": lambda: float32.statistics.extract(clip),
        "voice encoder (mel + LSTM)": lambda: float32.encoder.extract(clip),
        "voice encoder, int8 (mel + LSTM)": lambda: int8.encoder.extract(clip),
        "voice encoder, layers 2-3 int8 (mel + LSTM)": lambda: served_int8.encoder.extract(clip),
        "speech-stats-v2+ge2e (both)": lambda: float32.extract(clip),
        "speech-stats-v2+ge2e-int8 (both)": lambda: served_int8.extract(clip),
    }.items():
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        print(f"{name}: {1000 * statistics.median(times):.2f} ms median, {seconds:g} s clip")


def fidelity(data_root: Path, every: int) -> None:
    """How closely each int8 encoder's outputs follow the float one's on corpus clips: the
    correlation over each part's 256 values, per clip."""
    import soundfile as sf

    float32 = FEATURE_SETS[FLOAT_FEATURE_SET]
    served_int8 = FEATURE_SETS[ACCURATE_FEATURE_SET]
    assert isinstance(float32, StatsWithEncoder) and isinstance(served_int8, StatsWithEncoder)
    quantised = {
        "int8, all three layers": encoder_variant("fidelity-int8", PARTS, int8=True).encoder,
        "int8, layers 2-3 per channel (served)": served_int8.encoder,
    }
    clips = read_tess(data_root / "tess")[::every] + read_ravdess(data_root / "ravdess")[::every]
    correlations = {(name, part): [] for name in quantised for part in PARTS}
    for clip in clips:
        samples, _ = sf.read(clip.path, dtype="float32")
        exact = float32.encoder.extract(samples)
        for name, encoder in quantised.items():
            approximate = encoder.extract(samples)
            for i, part in enumerate(PARTS):
                span = slice(i * HIDDEN, (i + 1) * HIDDEN)
                value = float(np.corrcoef(exact[span], approximate[span])[0, 1])
                correlations[name, part].append(value)
    for (name, part), values in correlations.items():
        low, median, high = np.percentile(values, [0, 50, 100])
        print(
            f"{name}, {part}: correlation with float over {len(values)} clips: "
            f"min {low:.4f}, median {median:.4f}, max {high:.4f}"
        )


def main() -> None:
    register()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in ("ablate", "accuracy"):
        # The reports quote sys.argv as their command: keep the subcommand in it.
        sys.argv = [f"{sys.argv[0]} {command}", *sys.argv[2:]]
        (ablation if command == "ablate" else accuracy).main()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ablate", help="bench/ablation.py with the encoder variants")
    sub.add_parser("accuracy", help="bench/accuracy.py with the encoder variants")
    cost_parser = sub.add_parser("cost", help="time the encoder's features on one thread")
    cost_parser.add_argument("--seconds", type=float, default=3.0)
    cost_parser.add_argument("--repeats", type=int, default=50)
    fidelity_parser = sub.add_parser("fidelity", help="int8 encoder against the float one")
    fidelity_parser.add_argument("--data-root", type=Path, default=default_data_root())
    fidelity_parser.add_argument("--every", type=int, default=20, help="every Nth clip")
    args = parser.parse_args()
    if args.command == "fidelity":
        fidelity(args.data_root, args.every)
    else:
        cost(args.seconds, args.repeats)


if __name__ == "__main__":
    main()
