"""One clip from encoded bytes to a prediction, timed by stage, and the one answer builder.

:func:`clip_answer` is the body of ``/predict`` and ``/predict/raw``, of each ``/predict/batch``
item and of each ``ser-predict`` record; :func:`prediction_fields` is the part every stream
emotion event and timeline segment shares. Built here once, so the entry points cannot drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from service.audio import Source, decode_audio
from service.model import EmotionModel, Prediction


@dataclass(frozen=True)
class ClipResult:
    prediction: Prediction
    duration_s: float
    source_rate: int
    source_channels: int
    timings_s: dict[str, float]
    #: Segments and summary, from :func:`service.timeline.classify_with_timeline`.
    timeline: dict[str, Any] | None = None


def classify_clip(
    model: EmotionModel,
    source: Source,
    *,
    max_duration_s: float | None = None,
) -> ClipResult:
    """Decode ``source``, compute the model's features, and classify.

    Raises :class:`service.audio.AudioError` for unusable audio.
    """
    t0 = time.perf_counter()
    audio = decode_audio(
        source, target_rate=model.feature_set.sample_rate, max_duration_s=max_duration_s
    )
    t1 = time.perf_counter()
    features = model.feature_set.extract(audio.samples)
    t2 = time.perf_counter()
    probs = model.predict_proba(features)[0]
    t3 = time.perf_counter()
    return ClipResult(
        prediction=model.to_prediction(probs),
        duration_s=audio.duration_s,
        source_rate=audio.source_rate,
        source_channels=audio.source_channels,
        timings_s={"decode": t1 - t0, "features": t2 - t1, "inference": t3 - t2, "total": t3 - t0},
    )


def prediction_fields(prediction: Prediction) -> dict[str, Any]:
    """``label``, ``confidence`` and ``probabilities`` (every label) of one prediction.

    Parameters
    ----------
    prediction : Prediction
        From :meth:`service.model.EmotionModel.to_prediction`.

    Returns
    -------
    dict
        Plain floats and strings, ready for JSON.
    """
    return {
        "label": prediction.label,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
    }


def clip_answer(result: ClipResult, model: EmotionModel, *, timings: bool = True) -> dict[str, Any]:
    """The answer for one classified clip, exactly the ``/predict`` body.

    Parameters
    ----------
    result : ClipResult
        From :func:`classify_clip` or :func:`service.timeline.classify_with_timeline`.
    model : EmotionModel
        The model that answered: its version is the ``model`` field.
    timings : bool
        Include ``timing_ms`` (seconds per stage from ``result``, in milliseconds).

    Returns
    -------
    dict
        ``label, confidence, probabilities, duration_s, model``, then ``timing_ms`` when
        ``timings``, then ``timeline`` when ``result`` has one.
    """
    body = prediction_fields(result.prediction)
    body["duration_s"] = round(result.duration_s, 4)
    body["model"] = model.version
    if timings:
        body["timing_ms"] = {k: round(v * 1000.0, 3) for k, v in result.timings_s.items()}
    if result.timeline is not None:
        body["timeline"] = result.timeline
    return body
