"""The Ray side of ``ser-batch``: connect (or start a local Ray) and stream rows out of Ray Data.

The dataset is the list of inputs; ``map_batches`` sends a few paths at a time to a fixed pool
of :class:`service.batch.scorer.Scorer` actors, each holding one onnxruntime session, which
read, decode, compute features and classify inside the actor. Reading happens in the actor
rather than in a ``read_binary_files`` stage so that a missing or unreadable file is that
file's error row instead of a failed job, and so a long recording scored with a timeline is
decoded block by block from its file rather than held whole in the object store. The driver
only receives the small result tables, in the order they finish (not the input order).

On a cluster, every node needs this package installed (the same version as the driver: the
actors unpickle :class:`~service.batch.scorer.Scorer` from it) and must see the inputs at the
same paths: a shared filesystem, or URIs such as ``s3://``. The model is shipped from the
driver, so ``--model`` may be a file only the driver has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from service.batch.scorer import Scorer

#: Recordings per call of an actor: small, so progress moves steadily and a slow file holds
#: back few others; large enough that Ray's per-batch overhead (about a millisecond) is
#: negligible against decoding and features (tens of milliseconds per clip).
BATCH_FILES = 8


@dataclass(frozen=True)
class JobOptions:
    """How to score.

    Attributes
    ----------
    model_path : Path
        The ONNX model (read on the driver and shipped to the actors).
    timeline : bool
        One row per speech segment.
    workers : int or None
        Actors (one CPU and one model session each); ``None``: the cluster's CPU count.
    max_seconds : float or None
        Longer recordings get an ``audio_too_long`` error row.
    progress : bool
        Show Ray Data's progress bars.
    """

    model_path: Path
    timeline: bool = False
    workers: int | None = None
    max_seconds: float | None = None
    progress: bool = True


@contextmanager
def ray_runtime(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """Join the Ray cluster at ``address``, or start a local one on this machine's cores.

    A Ray already initialised in this process (a notebook, the tests) is used as it is and
    left running; one started here is shut down on exit. Ray's usage statistics are off
    unless ``RAY_USAGE_STATS_ENABLED`` says otherwise.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not address:
        # A Ray of this machine alone listens on the loopback interface only, not on the
        # machine's network address (Ray's own choice on macOS and Windows). Read when Ray is
        # first imported, hence before the import.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address)
    else:
        # No dashboard: a batch job does not need its web server and metrics agents.
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> int:
    """CPUs of the cluster this process is connected to (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def score(paths: Sequence[str], options: JobOptions) -> Iterator[pa.Table]:
    """Score ``paths`` on the connected Ray cluster.

    Parameters
    ----------
    paths : sequence of str
        Inputs from :func:`service.batch.inputs.list_inputs`.
    options : JobOptions
        Model, mode and pool size.

    Yields
    ------
    pyarrow.Table
        Rows of :func:`service.batch.rows.schema`, a few recordings at a time, as they finish.
        A recording's rows are always in one table.
    """
    import ray

    if not paths:
        return
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = options.progress
    workers = options.workers or cluster_cpus()
    dataset = ray.data.from_items([{"path": path} for path in paths])
    scored = dataset.map_batches(
        Scorer,
        fn_constructor_args=(options.model_path.read_bytes(), options.model_path.name),
        fn_constructor_kwargs={"timeline": options.timeline, "max_seconds": options.max_seconds},
        batch_size=BATCH_FILES,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(paths)))),
        num_cpus=1,
    )
    yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
