"""``ser-train``: train a model on labelled speech and export it to ONNX with its card."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from service.features import FEATURE_SETS, get_feature_set
from trainer.config import TrainConfig
from trainer.corpora import CORPORA, CorpusError, default_data_root, load_corpora
from trainer.extract import default_cache_dir
from trainer.recipes import DEFAULT, RECIPES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser-train",
        description="Train a speech emotion model, evaluate it, and export ONNX + model card.",
    )
    parser.add_argument(
        "--corpus",
        action="append",
        dest="corpora",
        metavar="SPEC",
        help="a corpus under --data-root (tess, ravdess, emodb, emovo, turevdb), NAME=PATH, or a "
        "manifest.csv (path,label[,speaker]); repeatable (default: all five)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=default_data_root(),
        help="folder holding the corpora's folders (default: %(default)s)",
    )
    parser.add_argument(
        "--calm-as",
        default="neutral",
        help="project label for RAVDESS 'calm', or 'drop' (default: %(default)s)",
    )
    parser.add_argument(
        "--recipe",
        default=DEFAULT.name,
        choices=list(RECIPES),
        help="feature set + network + training preset (default: %(default)s, the bundled "
        "model's; 'accurate' trains the opt-in accurate model, 'paper' reproduces the student "
        "paper)",
    )
    parser.add_argument(
        "--feature-set", choices=sorted(FEATURE_SETS), help="override the recipe's feature set"
    )
    parser.add_argument("--out", type=Path, default=Path("models/ser-default.onnx"))
    parser.add_argument("--name", default="ser-default")
    parser.add_argument(
        "--protocols",
        default="random,speaker",
        help="comma-separated evaluation protocols: random, speaker, loco (leave one corpus "
        "out), or 'none' (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    parser.add_argument(
        "--hidden",
        help="override the recipe's MLP hidden layer sizes, comma-separated (e.g. 256,128)",
    )
    parser.add_argument("--dropout", type=float, help="override the recipe's dropout rate")
    parser.add_argument(
        "--ensemble", type=int, help="override the recipe's number of averaged networks"
    )
    parser.add_argument(
        "--augment",
        help="override the recipe's augmentations: comma-separated "
        "(speed0.9, gain-6, white@10, white@0:30, babble@10, reverb0.3, "
        "speed1.1+white@5:30) or 'none'",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--workers", type=int, default=None, help="feature extraction processes")
    parser.add_argument("--quiet", action="store_true")
    return parser


def with_overrides(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """The recipe's ``config`` with the command line's overrides (and its seed).

    Raises
    ------
    ValueError
        If ``--hidden`` is not comma-separated integers.
    """
    hidden, architecture = config.hidden, config.architecture
    if args.hidden:
        hidden = tuple(int(units) for units in args.hidden.split(","))
        architecture = "mlp"  # other layers: no longer the paper's network
    augmentations = config.augmentations
    if args.augment:
        augmentations = () if args.augment == "none" else tuple(args.augment.split(","))
    return dataclasses.replace(
        config,
        seed=args.seed,
        architecture=architecture,
        hidden=hidden,
        epochs=args.epochs or config.epochs,
        batch_size=args.batch_size or config.batch_size,
        dropout=config.dropout if args.dropout is None else args.dropout,
        ensemble=args.ensemble or config.ensemble,
        augmentations=augmentations,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from trainer.pipeline import train_and_export  # heavy imports after --help

    recipe = RECIPES[args.recipe]
    try:
        config = with_overrides(recipe.config, args)
    except ValueError:
        print(
            f"ser-train: --hidden wants integers like 256,128, got {args.hidden!r}",
            file=sys.stderr,
        )
        return 2
    try:
        clips = load_corpora(
            args.corpora or list(CORPORA),
            data_root=args.data_root,
            calm_as=None if args.calm_as == "drop" else args.calm_as,
        )
    except CorpusError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    protocols = (
        []
        if args.protocols == "none"
        else [p.strip() for p in args.protocols.split(",") if p.strip()]
    )
    result = train_and_export(
        clips,
        feature_set=get_feature_set(args.feature_set) if args.feature_set else recipe.feature_set,
        config=config,
        out_path=args.out,
        name=args.name,
        protocols=protocols,
        cache_dir=None if args.no_cache else args.cache_dir,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(f"wrote {result.model_path} (version {result.metadata['ser.model_version']})")
    for protocol, outcome in result.evaluation.items():
        for group, summary in outcome["summary"].items():
            print(
                f"  {protocol:8s} {group:8s} UA {summary['unweighted_accuracy']:.3f} "
                f"± {summary['unweighted_accuracy_std']:.3f}  accuracy {summary['accuracy']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
