"""bench/voice_encoder.py's feature set feeds the encoder Resemblyzer's front end and keeps
its outputs in the order its names claim (a tiny stand-in encoder made here; no torch)."""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import librosa
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from bench import ablation
from bench.voice_encoder import HIDDEN, PARTS, StatsWithVoiceEncoder, register
from service.features import FEATURE_SETS, get_feature_set
from tests.helpers import tone
from trainer.recipes import RECIPES


def _write_encoder(path: Path, weights: np.ndarray) -> None:
    """``frames = tanh(mels @ W)``, ``embedding = mean of frames``: the real one's interface."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["mels", "W"], ["linear"]),
            helper.make_node("Tanh", ["linear"], ["frames"]),
            helper.make_node("ReduceMean", ["frames"], ["embedding"], axes=[1], keepdims=0),
        ],
        "stand_in_encoder",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, [1, "time", 40])],
        [
            helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, "time", HIDDEN]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, HIDDEN]),
        ],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    w = np.random.default_rng(0).normal(scale=0.05, size=(40, HIDDEN)).astype(np.float32)
    _write_encoder(tmp_path / "encoder.onnx", w)
    monkeypatch.setenv("SER_VOICE_ENCODER", str(tmp_path / "encoder.onnx"))
    return w


def _expected_frames(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    dbfs = 10 * np.log10(np.mean(y.astype(np.float64) ** 2))
    y = y * 10 ** ((-30 - dbfs) / 20) if dbfs < -30 else y
    mels = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=40)
    return np.tanh(mels.T @ w)


def test_statistics_then_the_encoder_parts_in_their_order(weights: np.ndarray) -> None:
    v2 = get_feature_set("speech-stats-v2")
    y = tone(freq=200.0, noise=0.01)
    out = StatsWithVoiceEncoder("test-all", PARTS).extract(y)
    std_only = StatsWithVoiceEncoder("test-std", ("std",))
    assert out.shape == (v2.dim + 3 * HIDDEN,)
    assert std_only.dim == len(std_only.names()) == v2.dim + HIDDEN
    assert std_only.names()[v2.dim] == "encoder_std0"
    np.testing.assert_array_equal(out[: v2.dim], v2.extract(y))
    frames = _expected_frames(y, weights)
    np.testing.assert_allclose(out[v2.dim : v2.dim + HIDDEN], frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(out[-HIDDEN:], frames.std(0), atol=1e-5)
    np.testing.assert_array_equal(std_only.extract(y)[v2.dim :], out[-HIDDEN:])


def test_quiet_clips_are_raised_to_minus_30_dbfs_and_loud_ones_kept(weights: np.ndarray) -> None:
    encoder = StatsWithVoiceEncoder("test-std", ("std",))
    y = tone(freq=200.0, noise=0.01)
    quiet = y * np.float32(10 ** (-50 / 20)) / np.sqrt(np.mean(y**2))
    quieter = quiet * np.float32(0.1)
    np.testing.assert_allclose(
        encoder.encoder_features(quiet), encoder.encoder_features(quieter), rtol=1e-3, atol=1e-5
    )
    loud = y * np.float32(0.5) / np.abs(y).max()
    assert not np.allclose(encoder.encoder_features(loud), encoder.encoder_features(loud * 0.5))


def test_the_configuration_names_the_encoder_file_by_content(
    weights: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = StatsWithVoiceEncoder("test-std", ("std",)).to_dict()
    _write_encoder(tmp_path / "other.onnx", weights * 2)
    monkeypatch.setenv("SER_VOICE_ENCODER", str(tmp_path / "other.onnx"))
    second = StatsWithVoiceEncoder("test-std", ("std",)).to_dict()
    assert first["voice_encoder"]["sha256"] != second["voice_encoder"]["sha256"]
    assert first["encoder_parts"] == ["std"]


def test_the_int8_encoder_is_made_beside_the_float_one_and_close_to_it(
    weights: np.ndarray, tmp_path: Path
) -> None:
    y = tone(freq=200.0, noise=0.01)
    float32 = StatsWithVoiceEncoder("test-all", PARTS)
    int8 = StatsWithVoiceEncoder("test-all-int8", PARTS, int8=True)
    assert int8.encoder_file() == tmp_path / "encoder-int8.onnx"
    assert int8.to_dict()["voice_encoder"] != float32.to_dict()["voice_encoder"]
    assert (tmp_path / "encoder-int8.onnx").exists()
    exact, quantised = float32.encoder_features(y), int8.encoder_features(y)
    assert not np.array_equal(exact, quantised)
    np.testing.assert_allclose(quantised, exact, atol=0.05 * np.abs(exact).max())


def test_unknown_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoder parts"):
        StatsWithVoiceEncoder("test-bad", ("pitch",))


def test_variants_are_registered_by_the_command_not_by_importing_it() -> None:
    # Importing it must not add feature sets that need an encoder file to every test that
    # runs over the registry.
    assert not [name for name in FEATURE_SETS if "encoder" in name]
    with patch.dict(FEATURE_SETS), patch.dict(RECIPES), patch.dict(ablation.VARIANTS):
        register()
        recipe = RECIPES["v2-voices+encoder-int8"]
        assert ablation.VARIANTS["v2-voices+encoder-int8"] is recipe
        feature_set = FEATURE_SETS[recipe.feature_set]
        assert isinstance(feature_set, StatsWithVoiceEncoder) and feature_set.int8
        assert recipe.config == RECIPES["speech-stats-v2-voices"].config
