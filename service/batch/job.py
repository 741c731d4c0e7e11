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
same paths: a shared filesystem, or URIs such as ``s3://``. The model is shipped from where the
command runs, so ``--model`` may be a file only that machine has.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from service.batch.scorer import Scorer

#: Clips per call of an actor. The default model scores a RAVDESS clip in about 3 ms, so Ray's
#: per-batch cost matters: 1,000 clips on one actor took 4.8 s in batches of 32 against 6.2 s in
#: batches of 8 (fixed start included); larger batches would only make progress coarser.
BATCH_FILES = 32
#: Recordings per call with ``--timeline``: long recordings dwarf the per-batch cost, and one
#: at a time keeps the actors evenly loaded until the end of the job.
TIMELINE_BATCH_FILES = 1


@dataclass(frozen=True)
class JobOptions:
    """How to score.

    Attributes
    ----------
    model_bytes : bytes
        The ONNX model file's content, read where the command runs and shipped to the actors.
    model_name : str
        The model's file name.
    timeline : bool
        One row per speech segment.
    workers : int or None
        Actors (one CPU and one model session each); ``None``: the cluster's CPU count.
    max_seconds : float or None
        Longer recordings get an ``audio_too_long`` error row.
    progress : bool
        Show Ray Data's progress bars.
    """

    model_bytes: bytes = field(repr=False)
    model_name: str
    timeline: bool = False
    workers: int | None = None
    max_seconds: float | None = None
    progress: bool = True

    @classmethod
    def for_model(cls, path: str | Path, **options: Any) -> JobOptions:
        """Options for the model file at ``path`` (read now)."""
        path = Path(path)
        return cls(model_bytes=path.read_bytes(), model_name=path.name, **options)


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

    Through a Ray Client address (``ray://``) the dataset is driven by an actor on the
    cluster (:class:`RemoteDriver`) whose tables come back here: Ray Data's executor cannot run
    in a Ray Client process.

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
    """
    import ray
    from ray.util.client import ray as client

    if not paths:
        return
    if not client.is_connected():
        yield from _score_here(paths, options)
        return
    # Ray Client has no streaming generators either: an actor drives the dataset and is polled.
    # It takes no CPU, so the scoring actors still get every core of the cluster.
    driver: Any = ray.remote(num_cpus=0)(RemoteDriver).remote(list(paths), options)
    finished = False
    try:
        while not finished:
            for item in ray.get(driver.take.remote()):
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    finished = True
                else:
                    yield item
    finally:
        if not finished:  # interrupted: stop the job (its actors go with their owner)
            ray.kill(driver)


class RemoteDriver:
    """Runs :func:`_score_here` on the cluster, in a thread, and hands out its tables.

    Items are tables, then ``None`` at the end, or the exception that stopped the job.
    """

    def __init__(self, paths: Sequence[str], options: JobOptions) -> None:
        self._items: queue.Queue[pa.Table | BaseException | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(paths, options), daemon=True)
        self._thread.start()

    def _run(self, paths: Sequence[str], options: JobOptions) -> None:
        try:
            for table in _score_here(paths, options):
                self._items.put(table)
        except BaseException as exc:  # handed to the client, which raises it
            self._items.put(exc)
        self._items.put(None)

    def take(self, wait_s: float = 5.0) -> list[pa.Table | BaseException | None]:
        """What is ready: at least one item unless ``wait_s`` passes first."""
        try:
            items = [self._items.get(timeout=wait_s)]
        except queue.Empty:
            return []
        while not self._items.empty():
            items.append(self._items.get_nowait())
        return items


def _score_here(paths: Sequence[str], options: JobOptions) -> Iterator[pa.Table]:
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = options.progress
    workers = options.workers or cluster_cpus()
    dataset = ray.data.from_items([{"path": path} for path in paths])
    scored = dataset.map_batches(
        Scorer,
        fn_constructor_args=(options.model_bytes, options.model_name),
        fn_constructor_kwargs={"timeline": options.timeline, "max_seconds": options.max_seconds},
        batch_size=TIMELINE_BATCH_FILES if options.timeline else BATCH_FILES,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(paths)))),
        num_cpus=1,
    )
    yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
