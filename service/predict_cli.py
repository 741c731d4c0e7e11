"""``ser-predict PATH...``: offline batch prediction with the service's model and features.

Files or folders (searched recursively) in, one JSON Lines record (or CSV row) per file out.
A file that cannot be decoded, or in which no speech is found (``no_speech``), gets an error
record; the run goes on.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from service.audio import AudioError
from service.errors import NoSpeechError, describe_error
from service.features import FeatureError
from service.inference import classify_clip, clip_answer
from service.model import EmotionModel, ModelContractError, load_model
from service.settings import BUNDLED_MODEL
from service.timeline import classify_with_timeline
from service.timeline_plot import PlotUnavailableError, plot_timeline, require_matplotlib

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}

_model: EmotionModel | None = None


def find_audio(paths: Sequence[str]) -> Iterator[Path]:
    """Files given directly, and audio files found under given folders, in sorted order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
        else:
            yield path


def _init(model_path: str) -> None:
    global _model
    _model = load_model(model_path)


def predict_file(
    path: Path,
    model: EmotionModel | None = None,
    *,
    max_duration_s: float | None = None,
    with_timeline: bool = False,
) -> dict[str, Any]:
    """One output record for ``path``: the prediction, or the error that stopped it."""
    model = model or _model
    assert model is not None, "call _init first"
    record: dict[str, Any] = {"path": str(path)}
    try:
        if with_timeline:
            result = classify_with_timeline(model, path, max_duration_s=max_duration_s)
        else:
            result = classify_clip(model, path, max_duration_s=max_duration_s)
    except (AudioError, FeatureError, NoSpeechError, OSError) as exc:
        # The same code and detail the API gives; an unreadable file is named by its error type.
        info = describe_error(exc)
        if info is None:
            record.update(error=type(exc).__name__, detail=str(exc))
        else:
            record.update(error=info.code, detail=info.detail)
        return record
    answer = clip_answer(result, model, timings=False)
    # Six decimals are plenty for a file of results, and keep CSV cells short.
    answer["confidence"] = round(answer["confidence"], 6)
    answer["probabilities"] = {k: round(v, 6) for k, v in answer["probabilities"].items()}
    record.update(answer)
    return record


def _predict_path(path: Path, **options: Any) -> dict[str, Any]:
    return predict_file(path, **options)


class Writer:
    def __init__(
        self, stream: TextIO, fmt: str, labels: Sequence[str], *, timeline: bool = False
    ) -> None:
        self.stream, self.fmt, self.labels = stream, fmt, list(labels)
        self.csv: Any = None
        if fmt == "csv":
            fields = [
                "path",
                "label",
                "confidence",
                "duration_s",
                "speech_s",
                "model",
                *[f"p_{label}" for label in labels],
                "error",
                "detail",
            ]
            if timeline:
                fields.append("timeline")  # the segments and summary as JSON, in one cell
            self.csv = csv.DictWriter(stream, fieldnames=fields)
            self.csv.writeheader()

    def write(self, record: dict[str, Any]) -> None:
        if self.csv is None:
            self.stream.write(json.dumps(record) + "\n")
            return
        row = {k: v for k, v in record.items() if k != "probabilities"}
        for label, p in (record.get("probabilities") or {}).items():
            row[f"p_{label}"] = p
        if "timeline" in row:
            row["timeline"] = json.dumps(row["timeline"])
        self.csv.writerow(row)


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def _check_plot_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit status 2) for a ``--plot`` that cannot mean one picture."""
    if not args.timeline:
        parser.error("--plot draws the timeline: add --timeline")
    if len(args.paths) != 1 or Path(args.paths[0]).is_dir():
        parser.error(
            "--plot draws one recording: give exactly one audio file, not several or a folder"
        )
    if Path(args.plot).suffix.lower() not in PLOT_SUFFIXES:
        parser.error(f"--plot {args.plot}: the picture's name ends in {', '.join(PLOT_SUFFIXES)}")


def _plot(record: dict[str, Any], out: str, labels: Sequence[str]) -> None:
    if "timeline" not in record:  # the file could not be classified: its error is written
        print(f"ser-predict: no plot drawn: {record.get('detail')}", file=sys.stderr)
        return
    plot_timeline(record["timeline"], out, labels=labels, title=Path(record["path"]).name)
    print(f"ser-predict: timeline drawn in {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ser-predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="audio files or folders (recursive)"
    )
    parser.add_argument("--model", default=os.environ.get("SER_MODEL_PATH", str(BUNDLED_MODEL)))
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    parser.add_argument("--output", "-o", help="output file (default: standard output)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-seconds", type=float, default=None, help="skip longer files")
    parser.add_argument(
        "--timeline", action="store_true", help="add speech segments with their emotions"
    )
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help="with --timeline and one file: draw its timeline (.png, .svg or .pdf; "
        "needs matplotlib: pip install 'ser[plot]')",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.plot:
        _check_plot_args(parser, args)
        try:
            require_matplotlib()  # before any work, not after it
        except PlotUnavailableError as exc:
            print(f"ser-predict: {exc}", file=sys.stderr)
            return 2
    try:
        model = load_model(args.model)
    except ModelContractError as exc:
        print(f"ser-predict: {exc}", file=sys.stderr)
        return 2
    files = list(find_audio(args.paths))
    if not files:
        print("ser-predict: no audio files found", file=sys.stderr)
        return 2
    # Closed in the finally below; standard output is never closed.
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    failures = 0
    try:
        writer = Writer(out, args.format, model.labels, timeline=args.timeline)
        options = {"max_duration_s": args.max_seconds, "with_timeline": args.timeline}
        bar = tqdm(total=len(files), unit="file", disable=args.no_progress, file=sys.stderr)
        if args.workers > 1 and len(files) > 1:
            with ProcessPoolExecutor(
                args.workers, initializer=_init, initargs=(args.model,)
            ) as pool:
                records = pool.map(partial(_predict_path, **options), files, chunksize=8)
                for record in records:
                    failures += "error" in record
                    writer.write(record)
                    bar.update()
        else:
            for path in files:
                record = predict_file(path, model, **options)
                failures += "error" in record
                writer.write(record)
                bar.update()
        bar.close()
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"ser-predict: {len(files) - failures} classified, {failures} failed", file=sys.stderr)
    if args.plot:
        _plot(record, args.plot, model.labels)  # the one file's record (_check_plot_args)
    return 0 if failures < len(files) else 1


if __name__ == "__main__":
    sys.exit(main())
