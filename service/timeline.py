"""Long recordings: find speech with an energy VAD, classify it in windows, summarise.

Segments are runs of frames whose energy is well above the recording's noise floor; short
gaps are bridged and blips dropped. A segment longer than ``window_s`` is classified in
consecutive windows whose probabilities are averaged, weighted by duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.model import EmotionModel


@dataclass(frozen=True)
class VadConfig:
    frame_s: float = 0.03
    # A frame is speech when it is this far above the noise floor (10th percentile of frame
    # energy) and no further than `max_below_peak_db` below the loudest frame.
    above_floor_db: float = 12.0
    max_below_peak_db: float = 45.0
    bridge_gap_s: float = 0.3
    min_segment_s: float = 0.3
    pad_s: float = 0.1


def speech_segments(
    samples: np.ndarray, *, sample_rate: int, config: VadConfig = VadConfig()
) -> list[tuple[int, int]]:
    """Speech regions as ``(start, end)`` sample indices, for mono ``samples`` of shape ``(n,)``."""
    frame = max(1, int(config.frame_s * sample_rate))
    n_frames = samples.shape[0] // frame
    if n_frames == 0:
        return []
    frames = samples[: n_frames * frame].reshape(n_frames, frame).astype(np.float64)
    energy = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    floor, peak = np.percentile(energy, 10), energy.max()
    threshold = max(floor + config.above_floor_db, peak - config.max_below_peak_db)
    if peak < -70:  # digital silence
        return []
    active = energy > threshold
    segments: list[list[int]] = []
    for i in np.flatnonzero(active).tolist():
        if segments and (i - segments[-1][1]) * config.frame_s <= config.bridge_gap_s:
            segments[-1][1] = i + 1
        else:
            segments.append([i, i + 1])
    pad = int(config.pad_s * sample_rate)
    out = []
    for start, end in segments:
        if (end - start) * config.frame_s < config.min_segment_s:
            continue
        out.append((max(0, start * frame - pad), min(samples.shape[0], end * frame + pad)))
    return out


def classify_span(
    model: EmotionModel, samples: np.ndarray, *, window: int, min_window: int
) -> np.ndarray:
    """Duration-weighted mean probabilities over consecutive windows of ``samples``."""
    bounds = list(range(0, samples.shape[0], window))
    pieces = [samples[b : b + window] for b in bounds]
    if len(pieces) > 1 and pieces[-1].shape[0] < min_window:
        pieces[-2] = np.concatenate([pieces[-2], pieces.pop()])
    features = np.stack([model.feature_set.extract(p) for p in pieces])
    probs = model.predict_proba(features)
    weights = np.array([p.shape[0] for p in pieces], dtype=np.float64)
    return (probs * weights[:, None]).sum(axis=0) / weights.sum()


def timeline(
    model: EmotionModel, samples: np.ndarray, *, window_s: float = 3.0, vad: VadConfig = VadConfig()
) -> dict[str, Any]:
    """Segments with start, end, label and probabilities, and an overall summary."""
    rate = model.feature_set.sample_rate
    window = int(window_s * rate)
    min_window = int(0.5 * rate)
    segments = []
    total = np.zeros(len(model.labels))
    speech_samples = 0
    for start, end in speech_segments(samples, sample_rate=rate, config=vad):
        probs = classify_span(model, samples[start:end], window=window, min_window=min_window)
        prediction = model.to_prediction(probs)
        segments.append(
            {
                "start": round(start / rate, 3),
                "end": round(end / rate, 3),
                "label": prediction.label,
                "confidence": prediction.confidence,
                "probabilities": prediction.probabilities,
            }
        )
        total += probs * (end - start)
        speech_samples += end - start
    distribution = total / speech_samples if speech_samples else total
    return {
        "segments": segments,
        "summary": {
            "duration_s": round(samples.shape[0] / rate, 3),
            "speech_s": round(speech_samples / rate, 3),
            "segments": len(segments),
            "dominant": model.labels[int(np.argmax(distribution))] if speech_samples else None,
            "distribution": {
                label: float(p) for label, p in zip(model.labels, distribution, strict=True)
            },
        },
    }
