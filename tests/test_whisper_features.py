"""The Whisper feature set: speech-stats-v2, then Whisper tiny.en's encoder (cut after layer 3,
int8, shipped in ``service/encoders``) pooled over layers 2 and 3; and combined sets of several
encoders (the same followed by Resemblyzer's encoder, built as an object: it lost the
cross-corpus probe, so no served model names it)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import librosa
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.contract import EMOTIONS
from service.features import (
    ENCODER_DIR,
    FEATURE_SETS,
    FeatureError,
    StatsWithEncoder,
    StatsWithEncodersConfig,
    VoiceEncoderConfig,
    WhisperEncoder,
    WhisperEncoderConfig,
    get_feature_set,
    read_encoder,
)
from service.features import encoder as encoder_module
from service.model import ModelContractError, load_model
from service.settings import Settings
from tests.helpers import encode, make_onnx_model, tone

WHISPER_SET = "speech-stats-v2+whisper-l23-int8"
BOTH_SET = "speech-stats-v2+whisper-l23+ge2e-int8"


def _feature_set(name: str) -> StatsWithEncoder:
    """The registered Whisper set, or the statistics + Whisper + GE2E set as an object."""
    if name == BOTH_SET:
        return StatsWithEncoder(
            StatsWithEncodersConfig(
                BOTH_SET,
                1,
                FEATURE_SETS["speech-stats-v2"].config,
                (WhisperEncoderConfig(), VoiceEncoderConfig()),
            )
        )
    fs = get_feature_set(name)
    assert isinstance(fs, StatsWithEncoder)
    return fs


def _whisper() -> WhisperEncoder:
    fs = get_feature_set(WHISPER_SET)
    assert isinstance(fs, StatsWithEncoder)
    encoder = fs.encoders[0]
    assert isinstance(encoder, WhisperEncoder)
    return encoder


def _voice(freq: float = 180.0, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A tone whose loudness comes and goes: some structure for the encoder to react to."""
    y = tone(freq=freq, seconds=seconds, seed=seed)
    t = np.arange(y.shape[0]) / 16_000
    return (y * (np.sin(2 * np.pi * 2.0 * t) > -0.3)).astype(np.float32)


@pytest.mark.parametrize(
    "y",
    [
        tone(seconds=2.0),
        tone(freq=310.0, seconds=1.37, seed=3, noise=0.05),
        0.1 * np.random.default_rng(0).standard_normal(16_003).astype(np.float32),
    ],
    ids=["tone", "odd-length", "noise"],
)
def test_the_front_end_is_whispers_log_mel(y: np.ndarray) -> None:
    """openai-whisper's log_mel_spectrogram: librosa's (Slaney) mel power of a centred,
    reflect-padded STFT, its last frame dropped; log10, floored at max - 8, (x + 4) / 4.
    Measured max |diff| 5e-6 (float32 round-off; sparse vs dense filter products)."""
    power = librosa.feature.melspectrogram(
        y=y, sr=16_000, n_fft=400, hop_length=160, n_mels=80, center=True, pad_mode="reflect"
    )[:, :-1]
    logs = np.log10(np.maximum(power, 1e-10))
    reference = (np.maximum(logs, logs.max() - 8.0) + 4.0) / 4.0
    ours = _whisper().log_mel(y)
    assert ours.shape == reference.shape == (80, y.shape[0] // 160)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=0, atol=2e-5)


def test_the_encoder_gives_every_layer_per_20_ms_and_the_same_values_every_time() -> None:
    encoder = _whisper()
    mel = encoder.log_mel(_voice(seconds=3.0))
    assert mel.shape == (80, 300)
    encoded, hidden = encoder.session().run(None, {"mel": mel[None]})
    # The convolutions plus positions, then layers 1-3; one frame per two mel frames.
    assert hidden.shape == (4, 1, 150, 384)
    assert encoded.shape == (1, 150, 384)
    again = WhisperEncoder(WhisperEncoderConfig()).session().run(None, {"mel": mel[None]})[1]
    np.testing.assert_array_equal(hidden, again)
    picked = encoder.encode(_voice(seconds=3.0))
    np.testing.assert_array_equal(picked, hidden[[2, 3], 0])
    # Layers differ from each other: the configured rows, not one repeated.
    assert np.abs(picked[0] - picked[1]).max() > 0.1


def test_the_pooled_outputs_are_each_layers_mean_then_spread() -> None:
    encoder = _whisper()
    y = _voice(seconds=3.0)
    frames = encoder.encode(y).astype(np.float64)
    vector = encoder.extract(y)
    assert vector.shape == (encoder.dim,) == (4 * 384,)
    expected = [frames[0].mean(0), frames[0].std(0), frames[1].mean(0), frames[1].std(0)]
    np.testing.assert_allclose(vector, np.concatenate(expected), rtol=1e-5, atol=1e-5)
    assert encoder.names()[:2] == ["whisper_l2_mean0", "whisper_l2_mean1"]
    assert encoder.names()[-1] == "whisper_l3_std383"
    # A higher voice moves the features.
    other = encoder.extract(_voice(freq=320.0, seed=1, seconds=3.0))
    assert np.abs(other - vector).max() > 0.05


@pytest.mark.parametrize("frames", [2, 20, 2998, 3000, 3002, 3010, 4500, 6000, 9002, 12_000])
def test_long_inputs_are_cut_into_the_fewest_equal_windows_within_the_position_table(
    frames: int,
) -> None:
    windows = _whisper().windows(frames)
    assert windows[0][0] == 0 and windows[-1][1] == frames
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    lengths = [stop - start for start, stop in windows]
    assert all(length % 2 == 0 and 0 < length <= 3000 for length in lengths)
    assert len(windows) == -(-frames // 3000)
    # No short tail: every window within two frames of the others.
    assert max(lengths) - min(lengths) <= 2


def test_a_45_s_clip_is_encoded_in_two_windows_and_pooled_over_all_its_frames() -> None:
    encoder = _whisper()
    y = tone(freq=200.0, seconds=45.0, noise=0.05)
    assert encoder.windows(4500) == [(0, 2250), (2250, 4500)]
    frames = encoder.encode(y)
    assert frames.shape == (2, 2250, 384)  # one frame per 20 ms of the whole clip
    vector = encoder.extract(y)
    assert np.isfinite(vector).all()
    np.testing.assert_allclose(vector[:384], frames[0].astype(np.float64).mean(0), atol=1e-5)
    # Each window is encoded on its own: its first frames see the start of its positions.
    whole = encoder.session().run(["hidden"], {"mel": encoder.log_mel(y)[None, :, :2250]})[0]
    np.testing.assert_array_equal(frames[:, :1125], whole[[2, 3], 0])


def test_a_clip_shorter_than_the_minimum_is_padded_and_only_its_frames_pooled() -> None:
    encoder = _whisper()
    y = tone(freq=220.0, seconds=0.1)
    assert encoder.encode(y).shape == (2, 5, 384)  # 10 mel frames of the clip, of 20 padded
    vector = encoder.extract(y)
    assert vector.shape == (encoder.dim,) and np.isfinite(vector).all()
    # Even a few samples give features (one frame), not an error.
    assert encoder.encode(tone(seconds=0.005)).shape == (2, 1, 384)
    assert np.isfinite(encoder.extract(tone(seconds=0.005))).all()


def test_the_configuration_records_the_shipped_encoder_file_and_its_licence() -> None:
    config = get_feature_set(WHISPER_SET).to_dict()
    assert config["kind"] == "speech-stats+encoders"
    assert config["statistics"] == FEATURE_SETS["speech-stats-v2"].to_dict()
    (whisper,) = config["encoders"]
    assert whisper == {"kind": "whisper", **WhisperEncoderConfig().to_dict()}
    assert whisper["layers"] == [2, 3] and whisper["statistics"] == ["mean", "std"]
    data = read_encoder(ENCODER_DIR / whisper["file"])
    assert hashlib.sha256(data).hexdigest() == whisper["sha256"]
    licence = (ENCODER_DIR / "LICENSE-whisper").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2022 OpenAI" in licence
    assert "LICENSE-whisper" in whisper["licence"]


def test_a_different_encoder_file_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.onnx"
    data = bytearray(read_encoder(ENCODER_DIR / WhisperEncoderConfig().file))
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    with pytest.raises(FeatureError, match="SHA-256"):
        WhisperEncoder(replace(WhisperEncoderConfig(), file=str(tampered))).session()
    with pytest.raises(FeatureError, match="not readable"):
        WhisperEncoder(replace(WhisperEncoderConfig(), file=str(tmp_path / "absent"))).session()
    # A layer the file does not output is refused at load, not at the first clip.
    with pytest.raises(FeatureError, match="hidden"):
        WhisperEncoder(replace(WhisperEncoderConfig(), layers=(2, 4))).session()
    with pytest.raises(FeatureError, match="statistics"):
        WhisperEncoder(replace(WhisperEncoderConfig(), statistics=("max",)))


@pytest.mark.parametrize("name", [WHISPER_SET, BOTH_SET])
def test_the_combined_sets_are_the_statistics_then_each_encoder_in_order(name: str) -> None:
    fs = _feature_set(name)
    y = _voice()
    vector = fs.extract(y)
    stats = FEATURE_SETS["speech-stats-v2"].extract(y)
    whisper = _whisper().extract(y)
    encoders = 4 * 384 + (3 * 256 if name == BOTH_SET else 0)
    assert vector.shape == (fs.dim,) == (len(fs.names()),) == (stats.shape[0] + encoders,)
    assert len(set(fs.names())) == fs.dim
    np.testing.assert_array_equal(vector[: stats.shape[0]], stats)
    np.testing.assert_array_equal(vector[stats.shape[0] : stats.shape[0] + 1536], whisper)
    assert fs.names()[stats.shape[0]] == "whisper_l2_mean0"
    if name == BOTH_SET:
        ge2e = FEATURE_SETS["speech-stats-v2+ge2e-int8"].extract(y)[stats.shape[0] :]
        np.testing.assert_array_equal(vector[stats.shape[0] + 1536 :], ge2e)
        assert fs.names()[stats.shape[0] + 1536] == "ge2e_embedding0"
        assert [e["kind"] for e in fs.to_dict()["encoders"]] == ["whisper", "ge2e"]
    # The trainer's fused statistics network reads the leading statistics columns.
    from trainer.config import TrainConfig  # noqa: PLC0415 - the trainer only here
    from trainer.pipeline import fusion_columns  # noqa: PLC0415

    assert fusion_columns(fs, TrainConfig(fuse_statistics=0.5)) == stats.shape[0]


def test_an_encoder_kind_appears_once_in_a_combined_set() -> None:
    statistics = FEATURE_SETS["speech-stats-v2"].config
    with pytest.raises(FeatureError, match="at most once"):
        StatsWithEncoder(
            StatsWithEncodersConfig(
                "twice", 1, statistics, (WhisperEncoderConfig(), WhisperEncoderConfig())
            )
        )
    with pytest.raises(FeatureError, match="at least one"):
        StatsWithEncoder(StatsWithEncodersConfig("none", 1, statistics, ()))
    # Resemblyzer's encoder in a combined set is recorded with its kind, unchanged otherwise.
    alone = StatsWithEncoder(
        StatsWithEncodersConfig("ge2e", 1, statistics, (VoiceEncoderConfig(),))
    )
    assert alone.to_dict()["encoders"] == [{"kind": "ge2e", **VoiceEncoderConfig().to_dict()}]


def test_a_model_on_whisper_features_is_served(tmp_path: Path) -> None:
    model_path = make_onnx_model(tmp_path / "whisper.onnx", feature_set=WHISPER_SET)
    model = load_model(model_path)
    assert model.feature_set is get_feature_set(WHISPER_SET)
    settings = Settings(model_path=model_path, max_audio_seconds=5.0)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict", files={"file": ("clip.wav", encode(_voice()), "audio/wav")}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probabilities"]) == set(EMOTIONS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_model_is_refused_at_load_when_the_service_holds_another_whisper_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_path = make_onnx_model(tmp_path / "whisper.onnx", feature_set=WHISPER_SET)
    swapped = tmp_path / "encoders"
    swapped.mkdir()
    file = WhisperEncoderConfig().file
    (swapped / file).write_bytes(read_encoder(ENCODER_DIR / file) + b"\0")
    monkeypatch.setattr(encoder_module, "ENCODER_DIR", swapped)
    # Drop a session other tests made (restored after the test), so the file is opened again.
    monkeypatch.setattr(_whisper(), "_session", None)
    with pytest.raises(ModelContractError, match="SHA-256"):
        load_model(model_path)
