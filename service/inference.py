"""One clip from encoded bytes to a prediction, timed by stage."""

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
