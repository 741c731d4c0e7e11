"""ser-train's network overrides are validated before any data is read."""

from __future__ import annotations

import pytest

from trainer.cli import build_parser, main


def test_bad_hidden_sizes_are_a_usage_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "never-read.csv"
    assert main(["--hidden", "128,lots", "--corpus", str(missing), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--hidden wants integers" in err and "never-read" not in err


def test_network_flags_parse() -> None:
    args = build_parser().parse_args(["--hidden", "64,32", "--dropout", "0.2", "--augment", "none"])
    assert (args.hidden, args.dropout, args.augment) == ("64,32", 0.2, "none")


def test_ensemble_and_ranged_augmentations_parse() -> None:
    args = build_parser().parse_args(
        ["--ensemble", "3", "--augment", "white@0:30,speed1.1+babble@5:30"]
    )
    assert args.ensemble == 3
    assert args.augment.split(",") == ["white@0:30", "speed1.1+babble@5:30"]


def test_overrides_make_a_new_configuration_and_leave_the_recipe_alone() -> None:
    from trainer.cli import with_overrides
    from trainer.recipes import RECIPES

    paper = RECIPES["paper"].config
    args = build_parser().parse_args(
        ["--recipe", "paper", "--seed", "7", "--hidden", "64,32", "--augment", "white@10"]
    )
    config = with_overrides(RECIPES[args.recipe].config, args)
    assert (config.seed, config.hidden, config.architecture) == (7, (64, 32), "mlp")
    assert config.augmentations == ("white@10",)
    assert (config.epochs, config.dropout, config.batch_size) == (100, 0.5, 32)
    assert (paper.seed, paper.hidden, paper.architecture) == (42, (100, 200, 100), "paper-mlp")
    untouched = with_overrides(paper, build_parser().parse_args(["--recipe", "paper"]))
    assert untouched == paper
