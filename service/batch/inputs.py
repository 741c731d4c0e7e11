"""What a batch job scores: files, folders, CSV manifests and filesystem URIs, as one list.

Every input becomes a string that a worker on any node can open: local paths are made
absolute (Ray workers do not share the driver's working directory), URIs (``s3://``,
``gs://``, ``file://``, anything :func:`pyarrow.fs.FileSystem.from_uri` reads) are kept as
URIs. The same string is the ``path`` column of the output, which is what a rerun compares
to skip finished inputs.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Iterator, Sequence
from pathlib import Path

from service.predict_cli import AUDIO_SUFFIXES, find_audio

#: A manifest is a CSV file with a ``path`` column (other columns are ignored).
MANIFEST_SUFFIX = ".csv"
MANIFEST_COLUMN = "path"


class InputError(ValueError):
    """An input cannot be listed: a manifest without a ``path`` column, an unreadable URI."""


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (and not for a Windows drive such as ``C:\\``)."""
    scheme, sep, _ = path.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


def list_inputs(inputs: Sequence[str]) -> list[str]:
    """Every recording named by ``inputs``, once each, in the order given.

    Parameters
    ----------
    inputs : sequence of str
        Audio files (taken as they are, whatever their suffix, so a missing file gets an
        error row), folders (searched recursively for :data:`AUDIO_SUFFIXES`, sorted), CSV
        manifests (a ``path`` column; relative entries are relative to the manifest's folder)
        and URIs of files, folders or manifests.

    Returns
    -------
    list of str
        Absolute local paths and URIs, duplicates removed (first occurrence kept).

    Raises
    ------
    InputError
        A manifest without a ``path`` column, or a URI that cannot be listed.
    """
    seen: dict[str, None] = {}
    for raw in inputs:
        for item in _expand(raw):
            seen.setdefault(item, None)
    return list(seen)


def _expand(raw: str) -> Iterator[str]:
    if is_uri(raw):
        yield from _expand_uri(raw)
    elif Path(raw).suffix.lower() == MANIFEST_SUFFIX and Path(raw).is_file():
        yield from _manifest(Path(raw).read_text(encoding="utf-8"), raw, base=Path(raw).parent)
    else:
        yield from (os.path.abspath(p) for p in find_audio([raw]))


def _manifest(text: str, name: str, *, base: Path | str) -> Iterator[str]:
    reader = csv.DictReader(io.StringIO(text))
    if MANIFEST_COLUMN not in (reader.fieldnames or []):
        raise InputError(f"{name}: a manifest needs a {MANIFEST_COLUMN!r} column")
    for row in reader:
        entry = (row[MANIFEST_COLUMN] or "").strip()
        if entry:
            yield _join(base, entry)


def _join(base: Path | str, entry: str) -> str:
    if is_uri(entry):
        return entry
    if isinstance(base, str):  # a URI folder: join and normalise after the scheme
        if entry.startswith("/"):
            return entry
        scheme, _, rest = f"{base.rstrip('/')}/{entry}".partition("://")
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.abspath(base / entry)


def _expand_uri(uri: str) -> Iterator[str]:
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) too
        raise InputError(f"{uri}: {exc}") from exc
    if info.type == fs.FileType.Directory:
        # The user's own prefix (scheme, bucket, host) is kept; only the tail is listed.
        prefix = uri.rstrip("/")
        root = path.rstrip("/")
        found = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
        yield from sorted(
            prefix + f.path[len(root) :]
            for f in found
            if f.type == fs.FileType.File and Path(f.path).suffix.lower() in AUDIO_SUFFIXES
        )
    elif info.type == fs.FileType.File and Path(path).suffix.lower() == MANIFEST_SUFFIX:
        with filesystem.open_input_stream(path) as stream:
            text = stream.read().decode("utf-8")
        yield from _manifest(text, uri, base=uri.rsplit("/", 1)[0])
    else:
        yield uri  # a file, or a missing one: its row will carry the error
