"""Variants of the accurate model's speaker encoder features and training.

The encoder is Resemblyzer's GE2E speaker encoder (``resemblyzer==0.1.4`` on PyPI,
Apache-2.0; a 3-layer LSTM of 256 over 40 mel bands, trained for speaker verification), shipped
with its last two LSTM layers in int8 as ``service/encoders/resemblyzer-ge2e-int8.onnx`` (made
by ``experiments/export_voice_encoder.py``) and run by the ``speech-stats-v2+ge2e-int8``
feature set of the opt-in ``models/ser-accurate.onnx``. This script runs, under the names their
rows were logged as: the accurate features with the default's training (no fusion), the same
without the encoder's d-vector, the late fusion of the encoder network with a network on the
statistics alone (half and a third on the statistics), the accurate recipe itself and the
accurate recipe with label smoothing 0.2. Results and reading: ``docs/experiments.md``, rows
in ``docs/ablation.jsonl``.

    .venv/bin/python -m experiments.voice_encoder ablate [VARIANT ...] [ablation options]
    .venv/bin/python -m experiments.voice_encoder accuracy [bench.accuracy options]
    .venv/bin/python -m experiments.voice_encoder cost [--seconds 3] [--repeats 50]

The variants on the float encoder (every frame, subsets of its outputs, all three layers in
int8) and the int8-against-float fidelity check needed the float encoder file, which no longer
ships; their rows and figures stay in the journal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from experiments import ablation
from service.features import StatsWithEncoder
from trainer.recipes import ACCURATE, DEFAULT, RECIPES, Recipe

#: The accurate model's features: the statistics, then the int8 encoder's outputs.
ACCURATE_FEATURES = ACCURATE.feature_set
assert isinstance(ACCURATE_FEATURES, StatsWithEncoder)


def encoder_variant(name: str, parts: tuple[str, ...]) -> StatsWithEncoder:
    """The accurate model's features with only ``parts`` of the encoder's outputs (among
    ``embedding``, ``mean``, ``std``, kept in that order), under ``name``."""
    config = ACCURATE_FEATURES.config
    return StatsWithEncoder(
        replace(config, name=name, encoder=replace(config.encoder, parts=parts))
    )


VARIANTS: dict[str, Recipe] = {
    # The accurate model's features with the default's training: no fusion, no smoothing (the
    # encoder on the clip's span between the first and last frame within 40 dB of its loudest).
    "v2-voices+encoder-trim40-int8": Recipe(
        "v2-voices+encoder-trim40-int8",
        ACCURATE_FEATURES,
        DEFAULT.config,
        "the accurate model's features with the default recipe's training",
    ),
    # Without the d-vector, the part trained to be the speaker: does it cost the accurate
    # model the unseen TESS speaker?
    "v2-voices+encoder-trim40-int8-mean-std": Recipe(
        "v2-voices+encoder-trim40-int8-mean-std",
        encoder_variant("v2+encoder-int8-mean-std", ("mean", "std")),
        DEFAULT.config,
        "the accurate model's features without the encoder's d-vector, the default's training",
    ),
    # Late fusion with the default's network on the statistics alone (the features the two
    # models share), averaged in one graph: half and half, then a third on the statistics.
    "fused-default+accurate-int8": Recipe(
        "fused-default+accurate-int8",
        ACCURATE_FEATURES,
        replace(DEFAULT.config, fuse_statistics=0.5),
        "the accurate features' network fused with the statistics' (0.5 on the statistics)",
    ),
    "fused-default-third+accurate-int8": Recipe(
        "fused-default-third+accurate-int8",
        ACCURATE_FEATURES,
        replace(DEFAULT.config, fuse_statistics=1 / 3),
        "the accurate features' network fused with the statistics' (1/3 on the statistics)",
    ),
    # The accurate recipe itself, under the name its rows were logged as.
    "fused-default-third+accurate-int8-label-smoothing": replace(
        ACCURATE, name="fused-default-third+accurate-int8-label-smoothing"
    ),
    # Twice the shipped smoothing: 0.1 cut what white noise costs by 2 points; does more cut
    # it below 5 without costing a single training voice?
    "fused-default-third+accurate-int8-label-smoothing-0.2": replace(
        ACCURATE,
        name="fused-default-third+accurate-int8-label-smoothing-0.2",
        config=replace(ACCURATE.config, label_smoothing=0.2),
        description=ACCURATE.description.replace("label smoothing 0.1", "label smoothing 0.2"),
    ),
}


def cost(seconds: float, repeats: int) -> None:
    """Median time of the accurate features' parts for one clip, one thread."""
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(int(seconds * ACCURATE_FEATURES.sample_rate))).astype(
        np.float32
    )
    for name, run in {
        "speech-stats-v2": lambda: ACCURATE_FEATURES.statistics.extract(clip),
        "voice encoder, layers 2-3 int8 (mel + LSTM)": lambda: ACCURATE_FEATURES.encoder.extract(
            clip
        ),
        "speech-stats-v2+ge2e-int8 (both)": lambda: ACCURATE_FEATURES.extract(clip),
    }.items():
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        print(f"{name}: {1000 * statistics.median(times):.2f} ms median, {seconds:g} s clip")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m experiments.voice_encoder"
    command = argv[0] if argv else ""
    if command == "ablate":
        ablation.main(argv[1:], variants=VARIANTS, prog=f"{prog} ablate")
        return
    if command == "accuracy":
        from bench import accuracy

        accuracy.main(argv[1:], systems={**RECIPES, **VARIANTS}, prog=f"{prog} accuracy")
        return
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ablate", help="experiments.ablation on these variants")
    sub.add_parser("accuracy", help="bench.accuracy with these variants beside the recipes")
    cost_parser = sub.add_parser("cost", help="time the features' parts on one thread")
    cost_parser.add_argument("--seconds", type=float, default=3.0)
    cost_parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    cost(args.seconds, args.repeats)


if __name__ == "__main__":
    main()
