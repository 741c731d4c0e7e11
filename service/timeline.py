"""Long recordings: find speech with the speech detector, classify it in windows, summarise.

Segments come from :mod:`service.vad` (runs of voiced frames; short gaps bridged, runs with too
little voicing or a level that never moves dropped), the detector ``/predict`` uses to decide
whether a clip has speech at all: a recording in which it finds none gets
:class:`service.errors.NoSpeechError` (422 ``no_speech``), as a plain ``/predict`` would. A
segment longer than ``window_s`` is classified in consecutive windows whose probabilities are
averaged, weighted by duration.

Everything here reads audio as blocks, so a recording never has to be whole in memory. Two
passes: the first keeps only two measures per 30 ms frame (energy and voicing: 40,000 floats
for 10 minutes) and finds the segments; the second gathers each window of each segment as the
blocks go by and classifies it, keeping only the windows being filled. An in-memory array is a
single block through the same code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.audio import BLOCK_S, Source, open_audio_blocks
from service.errors import NoSpeechError
from service.inference import ClipResult, prediction_fields
from service.model import EmotionModel
from service.vad import DEFAULT_VAD, VadConfig, analyse_blocks, segments_from_stats

#: A fresh iterable of mono float32 blocks of shape ``(m,)`` at the model's rate, per pass.
BlockSource = Callable[[], Iterable[np.ndarray]]

WINDOW_S = 3.0
#: A last window shorter than this joins the one before it rather than being classified alone.
MIN_WINDOW_S = 0.5


def span_windows(start: int, end: int, *, window: int, min_window: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` windows covering ``[start, end)``.

    Windows are ``window`` samples long; a last one shorter than ``min_window`` is merged into
    the one before, so the last can be up to ``window + min_window`` long.
    """
    pieces = [(b, min(b + window, end)) for b in range(start, end, window)]
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < min_window:
        last = pieces.pop()
        pieces[-1] = (pieces[-1][0], last[1])
    return pieces


@dataclass
class _Window:
    span: int
    start: int
    end: int
    buffer: np.ndarray | None = None
    filled: int = 0


def classify_spans(
    model: EmotionModel,
    blocks: Iterable[np.ndarray],
    spans: Sequence[tuple[int, int]],
    *,
    window: int,
    min_window: int,
    timings: dict[str, float] | None = None,
) -> list[np.ndarray]:
    """Duration-weighted mean probabilities of each span, its windows gathered from ``blocks``.

    Parameters
    ----------
    model : EmotionModel
        Classifies each window (features at the model's rate).
    blocks : iterable of numpy.ndarray
        Consecutive mono blocks of shape ``(m,)`` from sample 0; iteration stops once the
        last window is complete.
    spans : sequence of (int, int)
        ``(start, end)`` sample indices, ordered by start, inside the blocks' total length.
    window, min_window : int
        As for :func:`span_windows`.
    timings : dict or None
        When given, seconds spent in ``"features"`` and ``"inference"`` are added to it.

    Returns
    -------
    list of numpy.ndarray
        One array of shape ``(n_labels,)`` per span, float64, summing to 1.
    """
    if any(end <= start for start, end in spans):
        raise ValueError("every span needs at least one sample")
    plan = [
        _Window(i, a, b)
        for i, (start, end) in enumerate(spans)
        for a, b in span_windows(start, end, window=window, min_window=min_window)
    ]
    plan.sort(key=lambda w: w.start)
    features: list[list[np.ndarray]] = [[] for _ in spans]
    weights: list[list[int]] = [[] for _ in spans]
    pending = [0] * len(spans)
    for w in plan:
        pending[w.span] += 1
    results: list[np.ndarray | None] = [None] * len(spans)
    filling: list[_Window] = []
    upcoming = iter(plan)
    nxt = next(upcoming, None)
    offset = 0
    for block in blocks:
        stop = offset + block.shape[0]
        while nxt is not None and nxt.start < stop:
            # Allocated only when the blocks reach it: memory is the windows in flight.
            nxt.buffer = np.empty(nxt.end - nxt.start, dtype=np.float32)
            filling.append(nxt)
            nxt = next(upcoming, None)
        still: list[_Window] = []
        for w in filling:
            assert w.buffer is not None
            lo, hi = max(w.start, offset), min(w.end, stop)
            if hi > lo:
                w.buffer[lo - w.start : hi - w.start] = block[lo - offset : hi - offset]
                w.filled += hi - lo
            if w.filled < w.end - w.start:
                still.append(w)
                continue
            started = time.perf_counter()
            features[w.span].append(model.feature_set.extract(w.buffer))
            _add(timings, "features", time.perf_counter() - started)
            weights[w.span].append(w.end - w.start)
            w.buffer = None
            pending[w.span] -= 1
            if pending[w.span] == 0:
                started = time.perf_counter()
                probs = model.predict_proba(np.stack(features[w.span]))
                _add(timings, "inference", time.perf_counter() - started)
                weight = np.array(weights[w.span], dtype=np.float64)
                results[w.span] = (probs * weight[:, None]).sum(axis=0) / weight.sum()
                features[w.span] = []
        filling = still
        offset = stop
        if nxt is None and not filling:
            break  # the rest of the recording holds no window
    if nxt is not None or filling:
        raise RuntimeError(f"spans reach past the audio ({offset} samples)")
    return [r for r in results if r is not None]  # all of them, every span had a window


def classify_span(
    model: EmotionModel, samples: np.ndarray, *, window: int, min_window: int
) -> np.ndarray:
    """Duration-weighted mean probabilities over consecutive windows of ``samples``."""
    spans = [(0, samples.shape[0])]
    return classify_spans(model, [samples], spans, window=window, min_window=min_window)[0]


def _add(timings: dict[str, float] | None, key: str, seconds: float) -> None:
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + seconds


@contextmanager
def _each_pass(blocks: BlockSource) -> Iterator[Iterator[np.ndarray]]:
    """One pass over ``blocks``, closed (its file released) even when left early."""
    iterator = iter(blocks())
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class _Outcome:
    body: dict[str, Any]
    n_samples: int
    speech: np.ndarray | None  # duration-weighted probabilities over all speech, if any
    speech_s: float  # the segments' total length


def _timeline(
    model: EmotionModel,
    blocks: BlockSource,
    *,
    window_s: float,
    vad: VadConfig,
    timings: dict[str, float] | None = None,
) -> _Outcome:
    rate = model.feature_set.sample_rate
    with _each_pass(blocks) as first:
        stats, n = analyse_blocks(first, sample_rate=rate, config=vad)
    spans = segments_from_stats(stats, n, sample_rate=rate, config=vad)
    window, min_window = int(window_s * rate), int(MIN_WINDOW_S * rate)
    if spans:
        with _each_pass(blocks) as second:
            span_probs = classify_spans(
                model, second, spans, window=window, min_window=min_window, timings=timings
            )
    else:
        span_probs = []
    segments = []
    total = np.zeros(len(model.labels))
    speech_samples = 0
    for (start, end), probs in zip(spans, span_probs, strict=True):
        segments.append(
            {
                "start": round(start / rate, 3),
                "end": round(end / rate, 3),
                **prediction_fields(model.to_prediction(probs)),
            }
        )
        total += probs * (end - start)
        speech_samples += end - start
    distribution = total / speech_samples if speech_samples else total
    body = {
        "segments": segments,
        "summary": {
            "duration_s": round(n / rate, 3),
            "speech_s": round(speech_samples / rate, 3),
            "segments": len(segments),
            "dominant": model.labels[int(np.argmax(distribution))] if speech_samples else None,
            "distribution": {
                label: float(p) for label, p in zip(model.labels, distribution, strict=True)
            },
        },
    }
    return _Outcome(body, n, distribution if speech_samples else None, speech_samples / rate)


def timeline(
    model: EmotionModel,
    samples: np.ndarray,
    *,
    window_s: float = WINDOW_S,
    vad: VadConfig = DEFAULT_VAD,
) -> dict[str, Any]:
    """Segments with start, end, label and probabilities, and an overall summary.

    Parameters
    ----------
    model : EmotionModel
        The classifier; ``samples`` are at its feature set's rate.
    samples : numpy.ndarray
        Mono audio of shape ``(n,)``.
    window_s : float
        Segments are classified in windows of this length.
    vad : VadConfig
        Detector settings.

    Returns
    -------
    dict
        ``{"segments": [...], "summary": {...}}``, as in ``/predict?timeline=true``.
    """
    return _timeline(model, lambda: (samples,), window_s=window_s, vad=vad).body


def classify_with_timeline(
    model: EmotionModel,
    source: Source,
    *,
    max_duration_s: float | None = None,
    block_s: float = BLOCK_S,
    window_s: float = WINDOW_S,
    vad: VadConfig = DEFAULT_VAD,
) -> ClipResult:
    """Decode ``source`` block by block (twice) and classify it with a timeline.

    Memory does not grow with the recording's length: see the module docstring.

    Parameters
    ----------
    model : EmotionModel
        The classifier.
    source : bytes or path or binary file object
        Encoded audio, as for :func:`service.audio.decode_audio`. Decoded twice, so a file
        object must be seekable.
    max_duration_s : float or None
        Longer recordings raise :class:`service.audio.AudioTooLongError`.
    block_s : float
        Source seconds decoded per block (:data:`service.audio.BLOCK_S`).
    window_s : float
        Segments are classified in windows of this length.
    vad : VadConfig
        Detector settings.

    Returns
    -------
    ClipResult
        ``timeline`` holds the segments and summary. The overall prediction is the
        speech-weighted distribution of the summary, and ``speech_s`` the summary's.
        ``timings_s`` has ``decode`` (both passes, resampling included), ``features``,
        ``inference``, ``timeline`` (the rest: speech detection, gathering windows) and
        ``total``.

    Raises
    ------
    service.audio.AudioError
        Unusable audio, as :func:`service.audio.decode_audio` would raise it.
    service.errors.NoSpeechError
        The detector found no speech in the whole recording.
    """
    timings = {"decode": 0.0, "features": 0.0, "inference": 0.0}
    header: dict[str, Any] = {}
    rate = model.feature_set.sample_rate

    # Each pass reads a file object from where the caller left it.
    handle = (
        None if isinstance(source, bytes | bytearray | memoryview | str | os.PathLike) else source
    )
    position = None if handle is None else handle.tell()

    def blocks() -> Iterator[np.ndarray]:
        if handle is not None and position is not None:
            handle.seek(position)
        with open_audio_blocks(
            source, target_rate=rate, block_s=block_s, max_duration_s=max_duration_s
        ) as stream:
            header.update(rate=stream.source_rate, channels=stream.source_channels)
            started = time.perf_counter()
            for block in stream.blocks:
                timings["decode"] += time.perf_counter() - started
                yield block
                started = time.perf_counter()
            timings["decode"] += time.perf_counter() - started

    t0 = time.perf_counter()
    outcome = _timeline(model, blocks, window_s=window_s, vad=vad, timings=timings)
    if outcome.speech is None:
        raise NoSpeechError(outcome.n_samples / rate)
    total = time.perf_counter() - t0
    timings["total"] = total
    measured = timings["decode"] + timings["features"] + timings["inference"]
    timings["timeline"] = max(0.0, total - measured)
    return ClipResult(
        prediction=model.to_prediction(outcome.speech),
        duration_s=outcome.n_samples / rate,
        source_rate=header["rate"],
        source_channels=header["channels"],
        timings_s=timings,
        speech_s=outcome.speech_s,
        timeline=outcome.body,
    )
