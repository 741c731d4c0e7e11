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


# The accuracy benchmark's command line (bench.accuracy): defaults that depend on --quick and
# on whether the eGeMAPS reference can run here.


def _bench_args(argv: list[str]):
    from bench.accuracy import build_parser, resolve
    from trainer.recipes import RECIPES

    parser = build_parser(RECIPES, "python -m bench.accuracy")
    return resolve(parser.parse_args(argv), parser)


def test_the_full_run_is_every_protocol_loco_first_over_two_seeds() -> None:
    from bench.accuracy import PROTOCOLS

    args = _bench_args([])
    assert args.seeds == [42, 43] and args.protocols == list(PROTOCOLS)
    assert args.protocols[0] == "loco" and args.out == "accuracy" and not args.quick
    assert args.systems == ["paper", "fast", "default", "accurate"]


def test_quick_is_one_seed_fewer_protocols_and_its_own_report() -> None:
    from bench.accuracy import QUICK_PROTOCOLS

    args = _bench_args(["--quick", "--systems", "default"])
    assert args.seeds == [42] and args.protocols == list(QUICK_PROTOCOLS)
    assert args.out == "accuracy-quick"  # a smoke run never overwrites the full report
    explicit = _bench_args(["--quick", "--seeds", "7", "--protocols", "pooled", "--out", "x"])
    assert (explicit.seeds, explicit.protocols, explicit.out) == ([7], ["pooled"], "x")


def test_the_reference_is_on_when_it_can_run_and_off_with_a_note_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import egemaps

    monkeypatch.setattr(egemaps, "available", lambda: None)
    assert _bench_args([]).reference == "egemaps"
    off = _bench_args(["--reference", "none"])
    assert off.reference == "none" and "did not run (--reference none)" in off.reference_note
    monkeypatch.setattr(egemaps, "available", lambda: "opensmile is not installed")
    missing = _bench_args([])
    assert missing.reference == "none"
    assert "did not run (opensmile is not installed)" in missing.reference_note
    with pytest.raises(SystemExit):
        _bench_args(["--reference", "egemaps"])
    assert "opensmile is not installed" in capsys.readouterr().err
