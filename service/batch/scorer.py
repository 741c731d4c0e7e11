"""The worker of a batch job: one model session, recordings in, output rows out.

Ray Data runs a pool of these as actors (:mod:`service.batch.job`); nothing here imports Ray,
so the same class scores in a plain process too (the tests and ``bench.batch`` use that).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from service.audio import Source
from service.batch import rows
from service.batch.inputs import is_uri
from service.inference import classify_clip, clip_answer
from service.model import load_model
from service.timeline import classify_with_timeline


def read_source(path: str, *, whole: bool) -> Source:
    """What the decoder reads for ``path``: its bytes, or (``whole=False``) the local path.

    The bytes are what ``POST /predict`` decodes, so a clip is decoded exactly as the service
    would. A long recording scored with a timeline is decoded block by block from the local
    file instead, so memory does not grow with its length; a URI is always read whole (there
    is no block reader over a remote file).

    Raises
    ------
    OSError
        The file is missing or unreadable (``FileNotFoundError`` and the like).
    """
    if is_uri(path):
        from pyarrow import fs

        filesystem, inner = fs.FileSystem.from_uri(path)
        with filesystem.open_input_stream(inner) as stream:
            return bytes(stream.read())
    return Path(path).read_bytes() if whole else Path(path)


class Scorer:
    """Score recordings with one onnxruntime session.

    Parameters
    ----------
    model_bytes : bytes
        The ONNX model file's content. Shipped rather than named, so the workers of a cluster
        need not see the driver's disk; written to a private temporary file and loaded (and
        its contract checked) with :func:`service.model.load_model`, one intra-op thread.
    model_filename : str
        The model's file name (its stem names a model without a recorded name).
    timeline : bool
        Rows per speech segment (:func:`service.timeline.classify_with_timeline`) instead of
        one per recording (:func:`service.inference.classify_clip`).
    max_seconds : float or None
        Recordings longer than this get an ``audio_too_long`` error row.
    """

    def __init__(
        self,
        model_bytes: bytes,
        model_filename: str,
        *,
        timeline: bool = False,
        max_seconds: float | None = None,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ser-batch-")
        path = Path(self._dir.name) / model_filename
        path.write_bytes(model_bytes)
        self.model = load_model(path)
        self.timeline = timeline
        self.max_seconds = max_seconds
        self.schema = rows.schema(self.model.labels, timeline=timeline)

    def score(self, path: str) -> list[rows.Row]:
        """The rows of one recording: its answer, or the error that stopped it (never raises,
        so one bad file never stops a job)."""
        try:
            source = read_source(path, whole=not self.timeline)
            if self.timeline:
                result = classify_with_timeline(self.model, source, max_duration_s=self.max_seconds)
            else:
                result = classify_clip(self.model, source, max_duration_s=self.max_seconds)
        except Exception as exc:  # every failure becomes that file's error row
            return [rows.error_row(path, exc, model=self.model.version)]
        answer = clip_answer(result, self.model, timings=False)
        return rows.answer_rows(path, answer, timeline=self.timeline)

    def score_all(self, paths: Iterable[Any]) -> pa.Table:
        """Rows of every recording in ``paths``, as one table of :attr:`schema`."""
        out: list[rows.Row] = []
        for path in paths:
            out.extend(self.score(str(path)))
        return rows.to_table(out, self.schema)

    def __call__(self, batch: dict[str, Any]) -> pa.Table:
        """Ray Data's entry: a batch with a ``path`` column, shape ``(n,)``."""
        return self.score_all(batch["path"])
