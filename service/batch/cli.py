"""``ser-batch INPUT... --out results.parquet``: score archives of recordings on Ray.

INPUT: audio files, folders (searched recursively), CSV manifests (a ``path`` column) or URIs
(``s3://``, ``gs://``, ``file://``). Without ``--address`` a local Ray starts on this machine's
cores; with one, the job runs on that cluster (its nodes need this package installed and must
see the inputs). Every input gets one row (``--timeline``: one per speech segment): the label,
confidence and probabilities ``POST /predict`` would answer, or the error code it would give.
The output's extension picks the format: ``.parquet`` (a folder of part files), ``.csv`` or
``.jsonl``. Rerunning the same command scores only the inputs missing from the output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from service.batch import rows
from service.batch.inputs import InputError, list_inputs
from service.batch.job import JobOptions, ray_runtime, score
from service.batch.output import FORMATS, OutputError, open_output
from service.model import ModelContractError, load_model
from service.settings import BUNDLED_MODEL


@dataclass
class Summary:
    """What a run did: counted over the inputs it scored (not those skipped)."""

    inputs: int = 0
    skipped: int = 0
    files: int = 0
    errors: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    #: Seconds before the first result: Ray's start (or connection) and the actors' model load.
    startup_s: float = 0.0
    started: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, table: pa.Table) -> None:
        """Count the recordings in ``table``: each has exactly one row whose ``segment`` is 0
        or null (always, without ``--timeline``)."""
        if not self.files and not self.startup_s:
            self.startup_s = time.perf_counter() - self.started
        if "segment" in table.column_names:
            segment = table.column("segment")
            table = table.filter(pc.or_kleene(pc.is_null(segment), pc.equal(segment, 0)))
        self.files += table.num_rows
        self.errors += table.num_rows - table.column("error").null_count
        self.audio_s += pc.sum(table.column("duration_s")).as_py() or 0.0

    @property
    def rate(self) -> float:
        """Audio seconds scored per second of wall time."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def text(self) -> str:
        return (
            f"{self.files} files scored ({self.audio_s / 3600:.2f} h of audio), "
            f"{self.errors} errors, {self.skipped} already in the output; "
            f"wall time {self.wall_s:.1f} s (first results after {self.startup_s:.1f} s): "
            f"{self.rate:.1f} audio seconds per second"
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ser-batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, manifests, URIs")
    p.add_argument("--out", required=True, help=f"output: {', '.join(FORMATS)}")
    p.add_argument("--address", help="Ray cluster to join (ray://HOST:10001 or HOST:PORT)")
    p.add_argument("--model", default=os.environ.get("SER_MODEL_PATH", str(BUNDLED_MODEL)))
    p.add_argument("--timeline", action="store_true", help="one row per speech segment")
    p.add_argument(
        "--workers", type=int, help="model actors, one CPU each (default: the cluster's CPUs)"
    )
    p.add_argument("--max-seconds", type=float, help="longer recordings get an error row")
    p.add_argument("--no-progress", action="store_true", help="hide Ray Data's progress bars")
    return p


def run(args: argparse.Namespace) -> Summary:
    """Score what ``args`` name into ``args.out``; see the module docstring.

    Raises
    ------
    ModelContractError, OutputError, InputError
        Before any scoring: the model, the output or an input cannot be used.
    """
    summary = Summary()
    model = load_model(args.model)  # check the contract here, before any cluster starts
    schema = rows.schema(model.labels, timeline=args.timeline)
    with open_output(args.out, schema) as output:
        inputs = list_inputs(args.inputs)
        todo = [path for path in inputs if path not in output.done]
        summary.inputs, summary.skipped = len(inputs), len(inputs) - len(todo)
        if todo:
            options = JobOptions.for_model(
                args.model,
                timeline=args.timeline,
                workers=args.workers,
                max_seconds=args.max_seconds,
                progress=not args.no_progress,
            )
            with ray_runtime(args.address):
                summary.started = time.perf_counter()
                for table in score(todo, options):
                    output.write(table)
                    summary.add(table)
                summary.wall_s = time.perf_counter() - summary.started
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    try:
        summary = run(args)
    except (ModelContractError, OutputError, InputError) as exc:
        print(f"ser-batch: {exc}", file=sys.stderr)
        return 2
    if not summary.inputs:
        print("ser-batch: no audio files found", file=sys.stderr)
        return 2
    print(f"ser-batch: {summary.text()}", file=sys.stderr)
    print(
        f"ser-batch: {time.perf_counter() - started:.1f} s in all, Ray's start included",
        file=sys.stderr,
    )
    return 0 if summary.errors < summary.files or not summary.files else 1


if __name__ == "__main__":
    sys.exit(main())
