"""The transport-neutral error mapping and the one answer builder."""

from __future__ import annotations

import pytest

from service.audio import AudioError, AudioTooLongError, UnsupportedFormatError, decode_audio
from service.errors import (
    ErrorInfo,
    NoSpeechError,
    NotReadyError,
    OverloadedError,
    TooManyFilesError,
    describe_error,
)
from service.features import FeatureError
from service.inference import classify_clip, clip_answer, prediction_fields
from service.model import load_model
from tests.helpers import encode, speech_like


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (UnsupportedFormatError("nope"), ErrorInfo(415, "unsupported_format", "nope")),
        (AudioTooLongError("long"), ErrorInfo(413, "audio_too_long", "long")),
        (AudioError("short", reason="too_short"), ErrorInfo(422, "too_short", "short")),
        (FeatureError("bad"), ErrorInfo(422, "invalid_audio", "bad", kind="features")),
        (OverloadedError("busy"), ErrorInfo(503, "overloaded", "busy")),
        (NotReadyError("wait"), ErrorInfo(503, "not_ready", "wait")),
        (TooManyFilesError("many"), ErrorInfo(413, "too_many_files", "many")),
        (
            NoSpeechError(1.0),
            ErrorInfo(422, "no_speech", "No speech found in 1.00 s of audio."),
        ),
    ],
)
def test_known_errors_map_to_status_code_and_detail(exc: Exception, expected: ErrorInfo) -> None:
    assert describe_error(exc) == expected


def test_the_metric_kind_defaults_to_the_code() -> None:
    assert ErrorInfo(415, "unsupported_format", "x").kind == "unsupported_format"


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyError("k"), OSError("disk")])
def test_anything_else_is_a_bug(exc: Exception) -> None:
    assert describe_error(exc) is None


def test_a_real_decoder_error_is_described() -> None:
    with pytest.raises(AudioError) as caught:
        decode_audio(b"not audio at all" * 10)
    info = describe_error(caught.value)
    assert info is not None and (info.status, info.code) == (415, "unsupported_format")


def test_clip_answer_is_the_predict_body(tiny_model) -> None:
    model = load_model(tiny_model)
    result = classify_clip(model, encode(speech_like(seconds=1.0)))
    body = clip_answer(result, model)
    assert list(body) == [
        "label",
        "confidence",
        "probabilities",
        "duration_s",
        "speech_s",
        "model",
        "timing_ms",
    ]
    assert body["model"] == model.version and body["duration_s"] == pytest.approx(1.0)
    assert body["speech_s"] == pytest.approx(1.0, abs=0.05)
    assert set(body["timing_ms"]) == {"decode", "vad", "features", "inference", "total"}
    assert prediction_fields(result.prediction) == {
        k: body[k] for k in ("label", "confidence", "probabilities")
    }
    assert "timing_ms" not in clip_answer(result, model, timings=False)
