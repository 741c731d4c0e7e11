"""The recipes' networks (speech statistics, wider MLPs, ensembles, fusion) export with parity,
and the temperature baked into the graph is what the service returns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service import contract
from service.features import get_feature_set
from service.model import load_model
from tests.helpers import tone_classes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_mlp():
    from trainer.config import TrainConfig
    from trainer.network import fit

    fs = get_feature_set("speech-stats-v2")
    # Features of real (synthetic) audio: three pitch classes, so the net becomes confident.
    x_all, y_all = tone_classes(fs, (120.0, 220.0, 330.0), per_class=12, seed_step=100)
    order = np.random.default_rng(0).permutation(len(y_all))
    fit_idx, val_idx = order[:27], order[27:]
    config = TrainConfig(
        seed=3,
        architecture="mlp",
        hidden=(32, 16),
        dropout=0.1,
        epochs=30,
        batch_size=8,
        class_weights=True,
    )
    model = fit(
        x_all[fit_idx], y_all[fit_idx], x_all[val_idx], y_all[val_idx], n_labels=3, config=config
    )
    return fs, model, x_all, x_all[fit_idx]


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_exported_graph_applies_the_fitted_temperature(trained_mlp, tmp_path, temperature) -> None:
    from trainer.calibrate import apply_temperature
    from trainer.export import export_model
    from trainer.network import predict_proba, with_temperature

    fs, model, x_all, x_fit = trained_mlp
    path = tmp_path / "calibrated.onnx"
    meta = export_model(
        with_temperature(model, temperature),
        path=path,
        name="calibrated",
        labels=["angry", "happy", "sad"],
        feature_set=fs,
        parity_features=x_all,
        training_data={"clips": len(x_all)},
        metrics={},
        temperature=temperature,
    )
    assert float(meta[contract.KEY_TEMPERATURE]) == pytest.approx(temperature)
    # The recorded normalisation is the one inside the graph: the fitted data's statistics.
    normalisation = json.loads(meta[contract.KEY_NORMALISATION])
    np.testing.assert_allclose(normalisation["mean"], x_fit.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        normalisation["std"], np.maximum(x_fit.std(0), 1e-6), rtol=1e-3, atol=1e-4
    )
    served = load_model(path)
    assert served.feature_set.name == "speech-stats-v2"
    raw = predict_proba(model, x_all)
    got = served.predict_proba(x_all)
    np.testing.assert_allclose(got, apply_temperature(raw, temperature), atol=1e-5)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # Scaling never changes the decision, only how sure the model claims to be.
    assert np.array_equal(got.argmax(1), raw.argmax(1))
    if temperature > 1:
        assert got.max(1).mean() < raw.max(1).mean()
    else:
        assert got.max(1).mean() > raw.max(1).mean()


def test_an_ensemble_serves_the_mean_of_its_members(tmp_path) -> None:
    """``ensemble=3`` trains seeds s, s+1, s+2 and the served graph averages them."""
    from dataclasses import replace

    from trainer.config import TrainConfig
    from trainer.export import export_model
    from trainer.network import fit, predict_proba

    fs = get_feature_set("speech-stats-v2")
    x_all, y_all = tone_classes(fs, (120.0, 240.0), per_class=10, seed_step=50)
    fit_idx, val_idx = np.arange(0, 20, 2), np.arange(1, 20, 2)
    config = TrainConfig(seed=5, architecture="mlp", hidden=(8,), dropout=0.1, epochs=4)
    args = (x_all[fit_idx], y_all[fit_idx], x_all[val_idx], y_all[val_idx])
    members = [
        predict_proba(fit(*args, n_labels=2, config=replace(config, seed=5 + i)), x_all)
        for i in range(3)
    ]
    ensemble = fit(*args, n_labels=2, config=replace(config, ensemble=3))
    np.testing.assert_allclose(predict_proba(ensemble, x_all), np.mean(members, axis=0), atol=1e-6)
    # Members differ (else the average would be pointless), and the export keeps the mean.
    assert np.abs(members[0] - members[1]).max() > 1e-4
    path = tmp_path / "ensemble.onnx"
    export_model(
        ensemble,
        path=path,
        name="ensemble",
        labels=["angry", "sad"],
        feature_set=fs,
        parity_features=x_all,
        training_data={"clips": len(x_all)},
        metrics={},
    )
    np.testing.assert_allclose(
        load_model(path).predict_proba(x_all), np.mean(members, axis=0), atol=1e-5
    )


def test_a_fused_model_serves_the_mean_of_its_calibrated_networks(tmp_path) -> None:
    """``fuse_statistics``: a network on every feature and one on the statistics alone, each
    calibrated on the held-out split, averaged; the export serves that average."""
    from trainer.calibrate import apply_temperature, fit_temperature
    from trainer.config import TrainConfig
    from trainer.corpora import Clip
    from trainer.export import export_model
    from trainer.network import fit, predict_proba, with_temperature
    from trainer.pipeline import fusion_columns, train_fold

    fs = get_feature_set("speech-stats-v2+ge2e-int8")
    config = TrainConfig(
        seed=5, architecture="mlp", hidden=(8,), dropout=0.1, epochs=4, fuse_statistics=0.3
    )
    columns = fusion_columns(fs, config)
    assert columns == fs.statistics.dim and 0 < columns < fs.dim
    x_all, y_all = tone_classes(fs, (120.0, 240.0), per_class=10, seed_step=70)
    clips = [
        Clip(tmp_path / f"{label}-{i}.wav", str(label), f"s{i % 4}", "synthetic")
        for label in range(2)
        for i in range(10)
    ]
    fused = train_fold(
        {None: x_all},
        y_all,
        clips,
        np.arange(len(clips)),
        n_labels=2,
        config=config,
        statistics_columns=columns,
    )

    def calibrated(x_part: np.ndarray) -> np.ndarray:
        fit_x, val_x = x_part[fused.fit_idx], x_part[fused.val_idx]
        model = fit(fit_x, y_all[fused.fit_idx], val_x, y_all[fused.val_idx], n_labels=2,
                    config=config)  # fmt: skip
        temperature = fit_temperature(predict_proba(model, val_x), y_all[fused.val_idx])
        return predict_proba(with_temperature(model, temperature), x_part)

    every, statistics = calibrated(x_all), calibrated(x_all[:, :columns])
    assert np.abs(every - statistics).max() > 1e-3  # two different networks
    expected = 0.7 * every + 0.3 * statistics
    np.testing.assert_allclose(predict_proba(fused.model, x_all), expected, atol=1e-6)
    # Its own temperature is fitted on the same held-out speakers, and the export serves it.
    assert fused.temperature == pytest.approx(
        fit_temperature(expected[fused.val_idx], y_all[fused.val_idx]), rel=1e-4
    )
    path = tmp_path / "fused.onnx"
    meta = export_model(
        with_temperature(fused.model, fused.temperature),
        path=path,
        name="fused",
        labels=["angry", "sad"],
        feature_set=fs,
        parity_features=x_all,
        training_data={"clips": len(x_all)},
        metrics={},
        temperature=fused.temperature,
    )
    served = load_model(path)
    np.testing.assert_allclose(
        served.predict_proba(x_all), apply_temperature(expected, fused.temperature), atol=1e-5
    )
    # The recorded normalisation is the all-feature network's: the model's whole input.
    assert len(json.loads(meta[contract.KEY_NORMALISATION])["mean"]) == fs.dim


def test_fusion_needs_statistics_ahead_of_an_encoder() -> None:
    from trainer.config import TrainConfig
    from trainer.network import build_mlp, fuse_networks
    from trainer.pipeline import fusion_columns

    config = TrainConfig(architecture="mlp", hidden=(4,), fuse_statistics=0.5)
    with pytest.raises(ValueError, match="speech-stats-v2 is not"):
        fusion_columns(get_feature_set("speech-stats-v2"), config)
    assert fusion_columns(get_feature_set("speech-stats-v2"), TrainConfig()) is None

    def mlp(dim: int):
        return build_mlp(
            input_dim=dim, n_labels=2, mean=np.zeros(dim), std=np.ones(dim), config=config
        )

    with pytest.raises(ValueError, match="first 5 of 10"):
        fuse_networks(mlp(10), mlp(4), columns=5)
    with pytest.raises(ValueError, match="strictly between"):
        fuse_networks(mlp(10), mlp(4), columns=4, leading_weight=1.0)
    fused = TrainConfig(architecture="mlp", fuse_statistics=1.5)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        fusion_columns(get_feature_set("speech-stats-v2+ge2e-int8"), fused)
