"""Output rows of a batch job: one per recording (or per speech segment with ``--timeline``).

Rows are built from the service's own answer (:func:`service.inference.clip_answer`) and error
mapping (:func:`service.errors.describe_error`), so a file scored here gets the label,
probabilities and error code ``POST /predict`` would give it. Probabilities are flattened to one
``p_<label>`` column per model label, in the model's order, so every output format (Parquet, CSV,
JSON Lines) has the same flat columns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from service.errors import describe_error

log = logging.getLogger(__name__)

Row = dict[str, Any]

#: Code of a failure that :func:`service.errors.describe_error` does not know: a bug. The job
#: goes on (one file never stops it) and the traceback is logged by the worker.
INTERNAL_ERROR = "internal_error"


def probability_columns(labels: Sequence[str]) -> list[str]:
    return [f"p_{label}" for label in labels]


def columns(labels: Sequence[str], *, timeline: bool) -> list[str]:
    """Column names in output order.

    Per recording: ``path, label, confidence, p_<label>..., duration_s, speech_s, model, error,
    detail``. With ``timeline``, per speech segment: ``path, segment, start, end, label,
    confidence, p_<label>..., duration_s, speech_s, model, error, detail``; ``segment`` counts
    from 0, ``start`` and ``end`` are seconds, ``duration_s`` and ``speech_s`` are the whole
    recording's (as in the ``/predict`` answer).
    """
    head = ["path", "segment", "start", "end"] if timeline else ["path"]
    return [
        *head,
        "label",
        "confidence",
        *probability_columns(labels),
        "duration_s",
        "speech_s",
        "model",
        "error",
        "detail",
    ]


def schema(labels: Sequence[str], *, timeline: bool) -> pa.Schema:
    """The Arrow schema of :func:`columns`: every column nullable (an error row has no label)."""
    types = {"path": pa.string(), "segment": pa.int32(), "label": pa.string()}
    types.update(model=pa.string(), error=pa.string(), detail=pa.string())
    return pa.schema(
        [
            pa.field(name, types.get(name, pa.float64()))
            for name in columns(labels, timeline=timeline)
        ]
    )


def _prediction(fields: dict[str, Any]) -> Row:
    row = {"label": fields["label"], "confidence": fields["confidence"]}
    row.update({f"p_{label}": p for label, p in fields["probabilities"].items()})
    return row


def answer_rows(path: str, answer: dict[str, Any], *, timeline: bool) -> list[Row]:
    """The rows of one scored recording.

    Parameters
    ----------
    path : str
        The input as listed (absolute path or URI).
    answer : dict
        :func:`service.inference.clip_answer` of the recording (with ``timeline`` when asked).
    timeline : bool
        One row per speech segment. (A recording without speech is the service's
        ``no_speech`` error, an error row; were a timeline ever empty without one, the
        recording would still get its one row, with a null ``segment``.)

    Returns
    -------
    list of dict
        Rows with the keys of :func:`columns` that apply (missing keys are null).
    """
    common = {"path": path, "model": answer["model"]}
    common.update(duration_s=answer["duration_s"], speech_s=answer["speech_s"])
    if not timeline:
        return [{**common, **_prediction(answer)}]
    segments = answer["timeline"]["segments"]
    if not segments:
        return [common]
    return [
        {**common, "segment": i, "start": s["start"], "end": s["end"], **_prediction(s)}
        for i, s in enumerate(segments)
    ]


def error_row(path: str, exc: BaseException, *, model: str) -> Row:
    """The one row of a recording that could not be scored.

    ``error`` is the API's code for ``exc`` (``unsupported_format``, ``invalid_audio``,
    ``audio_too_long``...). A file that cannot be read (missing, no permission) is named by
    its ``OSError`` type, as ``ser-predict`` does. Anything else is :data:`INTERNAL_ERROR`.
    """
    info = describe_error(exc)
    if info is not None:
        code, detail = info.code, info.detail
    elif isinstance(exc, OSError):
        code, detail = type(exc).__name__, str(exc)
    else:
        log.error("unexpected error scoring %s", path, exc_info=exc)
        code, detail = INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"
    return {"path": path, "model": model, "error": code, "detail": detail}


def to_table(rows: Sequence[Row], table_schema: pa.Schema) -> pa.Table:
    """Rows as a table of ``table_schema``: absent keys become nulls, so batches concatenate."""
    return pa.Table.from_pylist(list(rows), schema=table_schema)
