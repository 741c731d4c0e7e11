"""The ``speech-stats-v2+ge2e-int8`` feature set: the statistics, then a pretrained speaker
encoder shipped in ``service/encoders`` (the features of the opt-in
``models/ser-accurate.onnx``)."""

from __future__ import annotations

import hashlib
import multiprocessing
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
    PACKED_SUFFIX,
    FeatureError,
    StatsWithEncoder,
    VoiceEncoder,
    VoiceEncoderConfig,
    get_feature_set,
    pack_encoder,
    read_encoder,
    unpack_encoder,
)
from service.features import encoder as encoder_module
from service.model import ModelContractError, load_model
from service.settings import Settings
from tests.helpers import encode, make_onnx_model, tone

#: The accurate model's: Resemblyzer's encoder with its last two LSTM layers in int8.
ENCODER_SET = "speech-stats-v2+ge2e-int8"


def _voice(freq: float = 180.0, seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A tone whose pitch glides, with pauses: enough structure for the LSTM to react to."""
    y = tone(freq=freq, seconds=seconds, seed=seed)
    t = np.arange(y.shape[0]) / 16_000
    return (y * (np.sin(2 * np.pi * 2.0 * t) > -0.3)).astype(np.float32)


def _dbfs(y: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(y.astype(np.float64) ** 2)))


def test_the_encoder_front_end_is_resemblyzers_librosa_mel() -> None:
    """Resemblyzer computes ``librosa.feature.melspectrogram(n_fft=400, hop_length=160,
    n_mels=40)``; the encoder only means what it learnt on that input."""
    # Every frame, as Resemblyzer's function gives them (the served set also trims the edges).
    encoder = VoiceEncoder(replace(VoiceEncoderConfig(), edge_trim_db=None))
    y = _voice()  # louder than -30 dBFS, so not rescaled
    assert _dbfs(y) > -30
    reference = librosa.feature.melspectrogram(
        y=y, sr=16_000, n_fft=400, hop_length=160, n_mels=40
    ).T
    ours = encoder.mel_power(y)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6 * reference.max())


def test_quiet_clips_are_raised_to_the_target_level_and_loud_ones_are_kept() -> None:
    encoder = get_feature_set(ENCODER_SET).encoder
    y = _voice()
    at_target = y * np.float32(10 ** ((-30.0 - _dbfs(y)) / 20))
    quiet = y * np.float32(1e-3)  # about -70 dBFS
    np.testing.assert_allclose(
        encoder.mel_power(quiet), encoder.mel_power(at_target), rtol=1e-3, atol=1e-9
    )
    # Never lowered: a loud clip and the same clip at -30 dBFS reach the LSTM differently.
    assert not np.allclose(encoder.mel_power(y), encoder.mel_power(at_target), rtol=0.1)
    # The int8 layers quantise their inputs with a scale taken per call, so mel frames equal
    # within 1e-3 give outputs within ~4e-3 (measured); the loud clip's differ by 0.2-0.6.
    raised = encoder.extract(at_target)
    np.testing.assert_allclose(encoder.extract(quiet), raised, rtol=0, atol=1e-2)
    assert np.abs(encoder.extract(y) - raised).max() > 0.1


def test_only_the_quiet_edges_are_trimmed_before_the_encoder() -> None:
    voice = tone(freq=200.0, noise=0.0, seconds=1.0)
    quiet = np.full(16_000, 1e-6, dtype=np.float32)
    padded = np.concatenate([quiet, voice, voice * np.float32(0.01), voice, quiet])
    served = get_feature_set(ENCODER_SET).encoder
    assert served.config.edge_trim_db == 40
    everything = VoiceEncoder(replace(VoiceEncoderConfig(), edge_trim_db=None)).mel_power(padded)
    kept = served.mel_power(padded)
    # About a second of near-silence off each end; the middle, 40 dB down, stays.
    assert everything.shape[0] - kept.shape[0] == pytest.approx(200, abs=6)
    assert kept.shape[0] == pytest.approx(300, abs=6)
    first = int(np.flatnonzero((everything == kept[0]).all(axis=1))[0])
    np.testing.assert_array_equal(kept, everything[first : first + kept.shape[0]])
    # Silence alone is not trimmed away to nothing.
    assert served.mel_power(np.zeros(16_000, dtype=np.float32)).shape[0] == 101
    with pytest.raises(FeatureError, match="edge_trim_db"):
        VoiceEncoder(replace(VoiceEncoderConfig(), edge_trim_db=0.0))


def test_statistics_come_first_then_the_encoder_parts_in_order() -> None:
    fs = get_feature_set(ENCODER_SET)
    assert isinstance(fs, StatsWithEncoder)
    y = _voice()
    vector = fs.extract(y)
    stats = FEATURE_SETS["speech-stats-v2"].extract(y)
    assert vector.shape == (fs.dim,) == (len(fs.names()),) == (stats.shape[0] + 3 * 256,)
    np.testing.assert_array_equal(vector[: stats.shape[0]], stats)
    embedding, mean, std = np.split(vector[stats.shape[0] :], 3)
    # The d-vector is L2-normalised by the encoder; a spread is never negative.
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-4)
    assert (std >= 0).all() and std.max() > 0
    assert fs.names()[stats.shape[0]] == "encoder_embedding0"
    assert fs.names()[-1] == "encoder_std255"
    # The encoder hears the difference between a low and a high voice.
    other = fs.extract(_voice(freq=320.0, seed=1))[stats.shape[0] :]
    assert np.abs(other - vector[stats.shape[0] :]).max() > 0.05
    assert not np.allclose(mean, other[256:512])


def test_the_configuration_records_the_shipped_encoder_file() -> None:
    config = get_feature_set(ENCODER_SET).to_dict()
    # The default configuration is the shipped encoder, not a file that is not there.
    assert config["encoder"] == VoiceEncoderConfig().to_dict()
    assert "int8" in config["encoder"]["source"]
    shipped = ENCODER_DIR / config["encoder"]["file"]
    # Stored packed (lossless): the bytes it unpacks to are the ones the hash names.
    assert not shipped.exists() and shipped.with_name(shipped.name + PACKED_SUFFIX).exists()
    data = read_encoder(shipped)
    assert config["encoder"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert unpack_encoder(pack_encoder(data[:-1])) == data[:-1]  # any length round-trips
    assert config["statistics"] == FEATURE_SETS["speech-stats-v2"].to_dict()
    assert config["encoder"]["parts"] == ["embedding", "mean", "std"]


def test_only_the_encoders_a_registered_set_runs_ship() -> None:
    """service/encoders holds the packed files the registry's sets run and their licence:
    an encoder no served model uses is weight in every install, not a feature."""
    used = {
        encoder.file + PACKED_SUFFIX
        for fs in FEATURE_SETS.values()
        if isinstance(fs, StatsWithEncoder)
        for encoder in fs.config.encoders
    }
    assert used == {
        "resemblyzer-ge2e-int8.onnx" + PACKED_SUFFIX,
        "whisper-tiny-en-l3-int8.onnx" + PACKED_SUFFIX,
    }
    shipped = {path.name for path in ENCODER_DIR.iterdir()}
    assert shipped == used | {"LICENSE-resemblyzer", "LICENSE-whisper"}


def test_a_missing_or_different_encoder_file_is_refused(tmp_path: Path) -> None:
    shipped = ENCODER_DIR / VoiceEncoderConfig().file
    tampered = tmp_path / "tampered.onnx"
    data = bytearray(read_encoder(shipped))
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(FeatureError, match="SHA-256"):
        VoiceEncoder(replace(VoiceEncoderConfig(), file=str(tampered))).session()
    with pytest.raises(FeatureError, match="not readable"):
        VoiceEncoder(replace(VoiceEncoderConfig(), file=str(tmp_path / "absent.onnx"))).session()
    with pytest.raises(FeatureError, match="parts"):
        VoiceEncoder(replace(VoiceEncoderConfig(), parts=("pitch",)))


def _extract_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(get_feature_set(ENCODER_SET).extract(_voice()))


def test_a_forked_worker_makes_its_own_session() -> None:
    """The trainer's extraction workers are forked from a process that may already hold a
    session; each must get a working one (and the same features)."""
    fs = get_feature_set(ENCODER_SET)
    here = fs.extract(_voice())
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_extract_in_child, args=(queue,))
    child.start()
    there = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(here, there)


def test_a_model_on_encoder_features_is_served(tmp_path: Path) -> None:
    model_path = make_onnx_model(tmp_path / "accurate.onnx", feature_set=ENCODER_SET)
    settings = Settings(model_path=model_path, max_audio_seconds=5.0)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict", files={"file": ("clip.wav", encode(_voice()), "audio/wav")}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["probabilities"]) == set(EMOTIONS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_a_model_is_refused_at_load_when_the_service_holds_another_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_path = make_onnx_model(tmp_path / "accurate.onnx", feature_set=ENCODER_SET)
    swapped = tmp_path / "encoders"
    swapped.mkdir()
    original = read_encoder(ENCODER_DIR / VoiceEncoderConfig().file)
    (swapped / VoiceEncoderConfig().file).write_bytes(original + b"\0")
    monkeypatch.setattr(encoder_module, "ENCODER_DIR", swapped)
    # The registered set may already hold a session from other tests: drop it (restored after
    # the test), so that loading the model opens the encoder file again.
    registered = get_feature_set(ENCODER_SET)
    assert isinstance(registered, StatsWithEncoder)
    monkeypatch.setattr(registered.encoder, "_session", None)
    with pytest.raises(ModelContractError, match="SHA-256"):
        load_model(model_path)
