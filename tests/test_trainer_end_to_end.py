"""Train on a tiny synthetic corpus, export to ONNX, serve it, classify unseen clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from service import contract
from service.api import create_app
from service.features import get_feature_set
from service.model import load_model
from service.settings import Settings
from tests.helpers import encode

pytestmark = pytest.mark.slow

# Each class differs in pitch, loudness and noisiness, the way emotions do in acted speech.
CLASSES = {
    "angry": (260.0, 0.5, 0.08),
    "happy": (340.0, 0.3, 0.01),
    "neutral": (180.0, 0.2, 0.005),
    "sad": (120.0, 0.08, 0.002),
}


def _clip(label: str, *, speaker_shift: float, seed: int, rate: int = 16_000) -> np.ndarray:
    freq, amplitude, noise = CLASSES[label]
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.6 * rate)) / rate
    f0 = freq * speaker_shift * (1 + 0.05 * rng.standard_normal())
    vibrato = 1 + 0.02 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / rate
    y = sum(amplitude / k * np.sin(k * phase) for k in (1, 2, 3, 4))
    # A syllable-rate swell: the service answers only clips its speech detector takes for
    # speech, and a voice's level moves where a steady tone's does not.
    y = y * (0.7 + 0.3 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6.3)))
    y = y * (1 + 0.1 * rng.standard_normal()) + noise * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rows = ["path,label,speaker"]
    for s, shift in enumerate((0.9, 1.0, 1.1, 1.2)):
        for label in CLASSES:
            for i in range(10):
                name = f"s{s}_{label}_{i}.wav"
                sf.write(
                    root / name,
                    _clip(label, speaker_shift=shift, seed=1000 * s + 10 * i + len(label)),
                    16_000,
                )
                rows.append(f"{name},{label},spk{s}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="module")
def trained(synthetic_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    from trainer.config import TrainConfig
    from trainer.corpora import read_manifest
    from trainer.pipeline import train_and_export

    out = tmp_path_factory.mktemp("model") / "synthetic.onnx"
    result = train_and_export(
        read_manifest(synthetic_corpus),
        feature_set=get_feature_set("mfcc40-mean"),
        config=TrainConfig(
            seed=7, epochs=40, batch_size=16, augmentations=("speed1.1", "white@20")
        ),
        out_path=out,
        name="synthetic",
        protocols=("speaker",),
        progress=False,
    )
    return result


def test_export_carries_the_contract_and_artifacts(trained) -> None:
    meta = trained.metadata
    assert json.loads(meta[contract.KEY_LABELS]) == ["angry", "happy", "neutral", "sad"]
    metrics = json.loads(meta[contract.KEY_METRICS])
    assert metrics["export_parity_max_abs_diff"] <= 1e-5
    # Calibration is fitted on held-out speakers and baked into the graph.
    assert float(meta[contract.KEY_TEMPERATURE]) == pytest.approx(metrics["temperature"], rel=1e-5)
    assert 0.05 <= metrics["temperature"] <= 20
    assert metrics["speaker"]["manifest"]["folds"] == 4
    assert json.loads(meta[contract.KEY_TRAINING_DATA])["clips"] == 160
    stem = trained.model_path.with_suffix("")
    train_json = json.loads(Path(f"{stem}.train.json").read_text())
    assert next(iter(train_json["config"])) == "seed"  # seed first, as in a recipe
    assert "non-commercial" in trained.model_path.with_suffix(".card.md").read_text()
    model = load_model(trained.model_path)  # the service accepts it
    assert model.labels == ("angry", "happy", "neutral", "sad")


def test_speaker_independent_evaluation_is_well_above_chance(trained) -> None:
    summary = trained.evaluation["speaker"]["summary"]["manifest"]
    assert summary["unweighted_accuracy"] > 0.6  # chance is 0.25


def test_served_model_classifies_unseen_speakers(trained) -> None:
    settings = Settings(model_path=trained.model_path)
    correct = total = 0
    with TestClient(create_app(settings)) as client:
        for label in CLASSES:
            for i in range(5):
                samples = _clip(label, speaker_shift=1.05, seed=99_000 + i)
                data = encode(samples, rate=16_000, format="FLAC")
                body = client.post("/predict", files={"file": ("x.flac", data)}).json()
                correct += body["label"] == label
                total += 1
    assert correct / total > 0.6


def test_training_is_reproducible(synthetic_corpus: Path, tmp_path) -> None:
    from trainer.config import TrainConfig
    from trainer.corpora import read_manifest
    from trainer.pipeline import train_and_export

    versions = []
    for run in range(2):
        result = train_and_export(
            read_manifest(synthetic_corpus),
            feature_set=get_feature_set("mfcc40-mean"),
            config=TrainConfig(seed=3, epochs=3, batch_size=16),
            out_path=tmp_path / f"r{run}.onnx",
            name="repro",
            protocols=(),
            progress=False,
        )
        versions.append(result.metadata[contract.KEY_MODEL_VERSION])
    assert versions[0] == versions[1]  # the version is a digest of the weights
