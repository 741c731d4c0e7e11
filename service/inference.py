"""One clip from encoded bytes to a prediction, timed by stage, and the one answer builder.

A clip is classified only when the speech detector (:mod:`service.vad`) finds speech in it;
otherwise :class:`service.errors.NoSpeechError` (422 ``no_speech``) is raised. The detector only
decides whether to answer: the features are those of the whole clip, as they always were.

:func:`clip_answer` is the body of ``/predict`` and ``/predict/raw``, of each ``/predict/batch``
item and of each ``ser-predict`` record; :func:`prediction_fields` is the part every stream
emotion event and timeline segment shares. Built here once, so the entry points cannot drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.audio import Source, decode_audio
from service.errors import NoSpeechError
from service.model import EmotionModel, Prediction
from service.vad import DEFAULT_VAD, VadConfig, speech_seconds, speech_segments


@dataclass(frozen=True)
class ClipResult:
    prediction: Prediction
    duration_s: float
    source_rate: int
    source_channels: int
    timings_s: dict[str, float]
    #: Seconds of speech the detector found (its segments' total length).
    speech_s: float
    #: Segments and summary, from :func:`service.timeline.classify_with_timeline`.
    timeline: dict[str, Any] | None = None


def classify_samples(
    model: EmotionModel, samples: np.ndarray, *, vad: VadConfig = DEFAULT_VAD
) -> tuple[Prediction, float, dict[str, float]]:
    """Find the speech in decoded mono ``samples`` (shape ``(n,)``, at the model's rate), then
    classify the whole clip: what every entry point runs once its audio is decoded.

    Returns
    -------
    prediction : Prediction
    speech_s : float
        Seconds of speech the detector found.
    timings_s : dict
        ``vad``, ``features`` and ``inference``, in seconds.

    Raises
    ------
    service.errors.NoSpeechError
        The detector found no speech.
    """
    rate = model.feature_set.sample_rate
    t0 = time.perf_counter()
    segments = speech_segments(samples, sample_rate=rate, config=vad)
    if not segments:
        raise NoSpeechError(samples.shape[0] / rate)
    t1 = time.perf_counter()
    features = model.feature_set.extract(samples)
    t2 = time.perf_counter()
    probs = model.predict_proba(features)[0]
    t3 = time.perf_counter()
    timings = {"vad": t1 - t0, "features": t2 - t1, "inference": t3 - t2}
    return model.to_prediction(probs), speech_seconds(segments, sample_rate=rate), timings


def classify_clip(
    model: EmotionModel,
    source: Source,
    *,
    max_duration_s: float | None = None,
    vad: VadConfig = DEFAULT_VAD,
) -> ClipResult:
    """Decode ``source``, find its speech, compute the model's features, and classify.

    Raises
    ------
    service.audio.AudioError
        Unusable audio.
    service.errors.NoSpeechError
        The detector found no speech in the clip.
    """
    t0 = time.perf_counter()
    audio = decode_audio(
        source, target_rate=model.feature_set.sample_rate, max_duration_s=max_duration_s
    )
    t1 = time.perf_counter()
    try:
        prediction, speech_s, stages = classify_samples(model, audio.samples, vad=vad)
    except NoSpeechError:
        # Said in the source's own duration, as the answer's duration_s is.
        raise NoSpeechError(audio.duration_s) from None
    return ClipResult(
        prediction=prediction,
        duration_s=audio.duration_s,
        source_rate=audio.source_rate,
        source_channels=audio.source_channels,
        timings_s={"decode": t1 - t0, **stages, "total": time.perf_counter() - t0},
        speech_s=speech_s,
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
        ``label, confidence, probabilities, duration_s, speech_s, model``, then ``timing_ms``
        when ``timings``, then ``timeline`` when ``result`` has one. ``speech_s`` is rounded
        as the timeline summary's, so the two agree.
    """
    body = prediction_fields(result.prediction)
    body["duration_s"] = round(result.duration_s, 4)
    body["speech_s"] = round(result.speech_s, 3)
    body["model"] = model.version
    if timings:
        body["timing_ms"] = {k: round(v * 1000.0, 3) for k, v in result.timings_s.items()}
    if result.timeline is not None:
        body["timeline"] = result.timeline
    return body
