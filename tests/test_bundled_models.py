"""The models that ship in models/: both pass the service's contract check and answer, and
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
SHIPPED = {"ser-default.onnx": "speech-stats-v2", "ser-accurate.onnx": "speech-stats-v2+ge2e-int8"}


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
    encoder = model.feature_set.to_dict().get("encoder")
    assert ("Pretrained component" in card) == (encoder is not None)
    if encoder is not None:
        assert encoder["source"] in card and "LICENSE-resemblyzer" in card
        licence = (ENCODER_DIR / "LICENSE-resemblyzer").read_text()
        assert "Apache License" in licence and "Version 2.0" in licence
    # The evaluation beside it (per fold) summarises to the one inside it.
    beside = json.loads(path.with_suffix(".metrics.json").read_text())
    assert "speaker" in beside
    for protocol, evaluation in beside.items():
        assert evaluation["summary"] == model.metrics[protocol]
    # The training config saved beside it names the features the model was checked against.
    trained = json.loads(path.with_suffix(".train.json").read_text())
    assert trained["feature_set"] == model.feature_set.to_dict()


@pytest.mark.parametrize(
    ("file", "recipe_name"),
    [("ser-default", "DEFAULT_RECIPE"), ("ser-accurate", "ACCURATE_MODEL_RECIPE")],
)
def test_a_shipped_model_was_trained_on_the_recipe_the_benchmark_runs(
    file: str, recipe_name: str
) -> None:
    """bench/accuracy.py scores the recipes named in trainer.recipes as the bundled models';
    the configuration saved beside each model must be that recipe's, or the figures in docs/
    describe another model."""
    import trainer.recipes
    from service.features import get_feature_set
    from trainer.config import TrainConfig

    recipe = trainer.recipes.RECIPES[getattr(trainer.recipes, recipe_name)]
    saved = json.loads((MODELS / f"{file}.train.json").read_text(encoding="utf-8"))
    assert saved["feature_set"] == get_feature_set(recipe.feature_set).to_dict()
    assert TrainConfig(**saved["config"]).to_dict() == recipe.config.to_dict()


@pytest.mark.parametrize(
    ("target", "recipe_name", "out"),
    [
        ("train", "DEFAULT_RECIPE", "models/ser-default.onnx"),
        ("train-accurate", "ACCURATE_MODEL_RECIPE", "models/ser-accurate.onnx"),
    ],
)
def test_make_train_rules_train_the_recipes_the_benchmark_runs(
    target: str, recipe_name: str, out: str
) -> None:
    """What `make train` and `make train-accurate` would run, parsed as ser-train parses it:
    a rule that trained another recipe would ship a model the benchmark no longer describes."""
    import shlex
    import shutil
    import subprocess

    import trainer.recipes
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
    expected = getattr(trainer.recipes, recipe_name)
    assert trainer.recipes.resolve_recipe(args.recipe).name == expected
    assert args.out == Path(out)


def test_recipe_aliases_name_the_bundled_models_recipes() -> None:
    from trainer.cli import build_parser
    from trainer.recipes import ACCURATE_MODEL_RECIPE, DEFAULT_RECIPE, RECIPES, resolve_recipe

    assert resolve_recipe("accurate") is RECIPES[ACCURATE_MODEL_RECIPE]
    assert resolve_recipe("default") is RECIPES[DEFAULT_RECIPE]
    assert resolve_recipe("paper") is RECIPES["paper"]
    with pytest.raises(KeyError):
        resolve_recipe("no-such-recipe")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--recipe", "no-such-recipe"])
