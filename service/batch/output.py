"""Write a batch job's rows, and tell which inputs an earlier run of the same job finished.

The format follows the output's extension:

- ``.parquet``: a folder of part files (``results.parquet/part-<run>-<n>.parquet``), which
  pandas, pyarrow, DuckDB and Spark read as one table. Each part is written to a hidden
  temporary name and renamed, so a part is whole or absent. Parts are written every
  :data:`FLUSH_S` seconds (or :data:`FLUSH_ROWS` rows), and on any exit Python sees
  (an error, Ctrl-C): a killed job loses at most the last ``FLUSH_S`` seconds of results.
- ``.csv`` and ``.jsonl`` (or ``.ndjson``): one file, appended and flushed as rows arrive.
  A record cut short by a crash is dropped on the next run, with the rows of the recording
  it belonged to (a timeline's rows are contiguous), and those recordings are scored again.

A rerun reads the ``path`` column of what is there and scores only the inputs that are
missing, so rerunning the same command after a crash finishes the job without duplicates.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

FLUSH_S = 30.0
FLUSH_ROWS = 5_000

TEXT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS = (".parquet", *TEXT_FORMATS)


class OutputError(ValueError):
    """The output cannot be used: unknown extension, or written by another kind of job."""


class Output:
    """Where rows go. :attr:`done` holds the paths already present when it was opened."""

    done: set[str]

    def write(self, table: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Write anything buffered. Safe to call twice."""

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(path: str | Path, schema: pa.Schema) -> Output:
    """The output at ``path`` for rows of ``schema``, ready to append.

    Raises
    ------
    OutputError
        The extension is none of :data:`FORMATS`, or what is there has other columns (another
        model's labels, or one run with ``--timeline`` and one without).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return ParquetParts(path, schema)
    if suffix in TEXT_FORMATS:
        return TextOutput(path, schema, TEXT_FORMATS[suffix])
    raise OutputError(f"{path}: the output must end in one of {', '.join(FORMATS)}")


def _check_columns(path: Path, found: list[str], schema: pa.Schema) -> None:
    if found != schema.names:
        raise OutputError(
            f"{path} holds other columns ({', '.join(found)}); it was written by another model "
            "or with(out) --timeline: choose another output"
        )


class ParquetParts(Output):
    """A folder of Parquet part files; see the module docstring."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file; Parquet output is a folder of part files")
        for stale in path.glob(".part-*.tmp"):  # a part a killed run was writing
            stale.unlink()
        self.path, self.schema = path, schema
        self.done = self._existing_paths()
        self._run = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._parts = 0
        self._buffer: list[pa.Table] = []
        self._rows = 0
        self._flushed = time.monotonic()

    def _existing_paths(self) -> set[str]:
        import pyarrow.parquet as pq

        done: set[str] = set()
        for part in sorted(self.path.glob("part-*.parquet")):
            _check_columns(self.path, pq.read_schema(part).names, self.schema)
            done.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        return done

    def write(self, table: pa.Table) -> None:
        self._buffer.append(table)
        self._rows += table.num_rows
        if self._rows >= FLUSH_ROWS or time.monotonic() - self._flushed >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one new part file."""
        import pyarrow.parquet as pq

        self._flushed = time.monotonic()
        if not self._rows:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._rows = [], 0
        name = f"part-{self._run}-{self._parts:05d}.parquet"
        self._parts += 1
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.path / name)

    def close(self) -> None:
        self.flush()


class TextOutput(Output):
    """One CSV or JSON Lines file, appended and flushed per batch; see the module docstring."""

    def __init__(self, path: Path, schema: pa.Schema, fmt: str) -> None:
        self.path, self.schema, self.fmt = path, schema, fmt
        self.columns = schema.names
        self.done = set()
        self._fresh = not path.exists() or path.stat().st_size == 0
        if not self._fresh:
            self._recover()
        self._file: Any = None  # opened at the first write: no empty file when nothing is written

    def _header(self) -> str:
        return self._format_csv([dict(zip(self.columns, self.columns, strict=True))])

    def _recover(self) -> None:
        """Read the paths already written; drop a record a crash cut short (and the rows of
        the recording it belonged to), rewriting the file if so."""
        text = self.path.read_text(encoding="utf-8")
        if self.fmt == "csv":
            records = list(csv.DictReader(io.StringIO(text)))
            header = next(csv.reader(io.StringIO(text)))
            _check_columns(self.path, header, self.schema)
        else:
            lines = text.splitlines()
            whole = lines if text.endswith("\n") else lines[:-1]
            records = [json.loads(line) for line in whole]
            if records:
                _check_columns(self.path, list(records[0]), self.schema)
        if not text.endswith("\n"):
            if self.fmt == "csv":
                records.pop()  # the reader parsed the cut record; JSON Lines never took it
            cut = records[-1]["path"] if records else None
            while records and records[-1]["path"] == cut:
                records.pop()
            self._rewrite(records)
        self.done = {r["path"] for r in records}

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        body = self._format(records)
        if self.fmt == "csv":
            body = self._header() + body
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, self.path)

    def _format_csv(self, records: list[dict[str, Any]]) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writerows(records)
        return buffer.getvalue()

    def _format(self, records: list[dict[str, Any]]) -> str:
        if self.fmt == "csv":
            return self._format_csv(records)
        return "".join(json.dumps(r) + "\n" for r in records)

    def write(self, table: pa.Table) -> None:
        text = self._format(table.to_pylist())
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
            if self._fresh and self.fmt == "csv":
                text = self._header() + text
        # One write per batch, then a flush: what a killed job loses is at most this batch.
        self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.close()
