"""The models that ship in models/: each passes the service's contract check and answers, and
each has the card and files ``ser-train`` writes beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import contract
from service.features import ENCODER_DIR
from service.model import load_model
from service.settings import BUNDLED_MODEL
from tests.helpers import tone

MODELS = BUNDLED_MODEL.parent
#: model file -> the feature set it must run on.
SHIPPED = {
    "ser-default.onnx": "speech-stats-v2+whisper-l23-int8",
    "ser-fast.onnx": "speech-stats-v2",
    "ser-accurate.onnx": "speech-stats-v2+ge2e-int8",
}


@pytest.mark.parametrize(("file", "feature_set"), sorted(SHIPPED.items()))
def test_a_shipped_model_loads_answers_and_carries_its_card(file: str, feature_set: str) -> None:
    path = MODELS / file
    model = load_model(path)
    assert model.feature_set.name == feature_set
    assert model.name == Path(file).stem
    assert model.labels == contract.EMOTIONS
    probs = model.predict_proba(model.feature_set.extract(tone(seconds=2.0)))
    assert probs.shape == (1, len(contract.EMOTIONS))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5) and (probs > 0).all()
    card = path.with_suffix(".card.md").read_text(encoding="utf-8")
    assert model.version in card and "non-commercial" in card
    # A pretrained encoder's own licence travels with the model that runs it.
    config = model.feature_set.to_dict()
    encoders = config.get("encoders") or ([config["encoder"]] if config.get("encoder") else [])
    assert ("Pretrained component" in card) == bool(encoders)
    for encoder in encoders:
        licence_file = (
            "LICENSE-whisper" if "Whisper" in encoder["source"] else "LICENSE-resemblyzer"
        )
        assert encoder["source"] in card and licence_file in card
        licence = (ENCODER_DIR / licence_file).read_text()
        assert ("Apache License" in licence) or ("MIT License" in licence)
    # The evaluation beside it (per fold) summarises to the one inside it.
    beside = json.loads(path.with_suffix(".metrics.json").read_text())
    # Held-out voices at least: speakers of a corpus, or whole corpora.
    assert {"speaker", "loco"} & set(beside)
    for protocol, evaluation in beside.items():
        assert evaluation["summary"] == model.metrics[protocol]
    # The training config saved beside it names the features the model was checked against.
    trained = json.loads(path.with_suffix(".train.json").read_text())
    assert trained["feature_set"] == model.feature_set.to_dict()


@pytest.mark.parametrize(
    ("file", "recipe"),
    [("ser-default", "default"), ("ser-fast", "fast"), ("ser-accurate", "accurate")],
)
def test_a_shipped_model_was_trained_on_the_recipe_the_benchmark_runs(
    file: str, recipe: str
) -> None:
    """bench.accuracy scores trainer.recipes' ``default`` and ``accurate`` as the bundled
    models; the configuration saved beside each model (which predates the role names) must be
    that recipe's, features and training alike, or the figures in docs/ describe another
    model."""
    from trainer.config import TrainConfig
    from trainer.recipes import RECIPES

    saved = json.loads((MODELS / f"{file}.train.json").read_text(encoding="utf-8"))
    assert saved["feature_set"] == RECIPES[recipe].feature_set.to_dict()
    assert TrainConfig(**saved["config"]).to_dict() == RECIPES[recipe].config.to_dict()


@pytest.mark.parametrize(
    ("target", "recipe", "out"),
    [
        ("train", "default", "models/ser-default.onnx"),
        ("train-fast", "fast", "models/ser-fast.onnx"),
        ("train-accurate", "accurate", "models/ser-accurate.onnx"),
    ],
)
def test_make_train_rules_train_the_recipes_the_benchmark_runs(
    target: str, recipe: str, out: str
) -> None:
    """What `make train` and `make train-accurate` would run, parsed as ser-train parses it:
    a rule that trained another recipe would ship a model the benchmark no longer describes."""
    import shlex
    import shutil
    import subprocess

    from trainer.cli import build_parser

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(
        [make, "--no-print-directory", "--dry-run", target],
        cwd=MODELS.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = dry_run.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line) for line in lines if "ser-train" in line]
    assert len(commands) == 1, dry_run
    args = build_parser().parse_args(commands[0][1:])
    assert args.recipe == recipe
    assert args.out == Path(out)


def test_the_recipes_are_the_paper_and_the_bundled_models_and_read_only() -> None:
    from dataclasses import FrozenInstanceError

    from trainer.cli import build_parser
    from trainer.recipes import RECIPES

    assert list(RECIPES) == ["paper", "default", "fast", "accurate"]
    assert all(recipe.name == name for name, recipe in RECIPES.items())
    assert build_parser().parse_args([]).recipe == "default"
    with pytest.raises(TypeError):
        RECIPES["variant"] = RECIPES["default"]  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        RECIPES["default"].config.epochs = 1  # type: ignore[misc]
    # The long names the recipes had before they were named by role are gone.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--recipe", "speech-stats-v2-voices"])
