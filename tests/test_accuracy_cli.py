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
