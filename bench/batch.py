"""Batch throughput: ``ser-batch`` on a local Ray with 1 and 2 workers against ``ser-predict``
in one process, on the same files, in one run.

    .venv/bin/python -m bench.batch [--files 600] [--repeat 5] [--models default accurate]

Run from the repository root with the ``batch`` extra installed. Scores a few hundred RAVDESS
clips from ``../shared/data/ravdess`` (spread over all actors) when the corpus is there, and
synthetic speech-like clips of the same length and format otherwise, each ``--repeat`` times:
the default model scores a clip in a few milliseconds, so a few hundred clips would measure
little but the start of Ray's actors. Prints a Markdown table and writes ``docs/batch.json``.

What is measured, per model: ``ser-predict --workers 1`` (one process, the model loaded once;
its wall time includes loading the model and writing JSON Lines); ``ser-predict --workers 2``
(its process pool), and ``ser-batch`` with 1 and 2 actors on a local Ray of this machine's cores,
started once for the whole run (its start is reported apart; each job still starts its actors
and loads the model in them, which *first result* shows). Beside the wall time, the CPU seconds
of this process and all its descendants (Ray's processes, the pool's) over the run (sampled
five times a second, see :class:`CpuMeter`): on a machine
shared with other work the wall time depends on what else runs, the CPU time much less, and
audio seconds per CPU second is the per-core rate a cluster multiplies.
"""

from __future__ import annotations

import os

# As ser-serve does: BLAS threads would only compete with the workers for the two cores. Set
# before numpy is first imported (Ray's workers inherit it).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import soundfile as sf  # noqa: E402

from bench.clips import speech_like  # noqa: E402
from bench.speed_report import machine  # noqa: E402
from service import predict_cli  # noqa: E402
from service.batch.job import JobOptions, ray_runtime, score  # noqa: E402
from service.settings import BUNDLED_MODEL  # noqa: E402
from trainer.corpora import default_data_root  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
MODELS = {"default": BUNDLED_MODEL, "accurate": BUNDLED_MODEL.with_name("ser-accurate.onnx")}


def pick_clips(count: int, data_root: Path, scratch: Path) -> tuple[list[str], str]:
    """``count`` RAVDESS clips spread evenly over the sorted corpus (so every actor is in),
    or synthetic 48 kHz FLAC clips of RAVDESS's typical length when the corpus is absent."""
    corpus = sorted(
        str(p) for p in (data_root / "ravdess").rglob("*") if p.suffix in {".wav", ".flac"}
    )
    if corpus:
        step = max(1, len(corpus) // count)
        return corpus[::step][:count], f"RAVDESS ({len(corpus)} clips, every {step}th)"
    y = speech_like(3.7, 48_000)
    paths = []
    for i in range(count):
        path = scratch / f"clip-{i:04d}.flac"
        sf.write(path, y, 48_000, subtype="PCM_16")
        paths.append(str(path))
    return paths, "synthetic speech-like 3.7 s clips, 48 kHz FLAC (RAVDESS absent)"


def audio_seconds(paths: list[str]) -> float:
    durations: dict[str, float] = {}
    for p in paths:
        if p not in durations:
            durations[p] = sf.info(p).duration
    return sum(durations[p] for p in paths)


def _tree_cpu() -> dict[tuple[int, int], float]:
    """CPU seconds (user + system) of this process and each process under it, keyed by
    (pid, start time) so a reused pid is another process."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        stats[int(stat.parent.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    cpu, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in stats:
            fields = stats[pid]
            cpu[pid, int(fields[19])] = (int(fields[11]) + int(fields[12])) / tick
        todo += children.get(pid, [])
    return cpu


class CpuMeter:
    """CPU seconds this process and its descendants (Ray's processes, a process pool) use
    while it runs, sampled every ``every_s``: Ray's workers are reaped without their time
    reaching any parent, so each is read while it lives (at most ``every_s`` of a process's
    last CPU time is missed)."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self._start = _tree_cpu()
        self._last = dict(self._start)
        self._stop = threading.Event()
        self._own_s = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            self._last.update(_tree_cpu())
        self._own_s = time.thread_time()  # the sampling itself, left out of the total

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._last.update(_tree_cpu())
        used = sum(cpu - self._start.get(key, 0.0) for key, cpu in self._last.items())
        return used - self._own_s


def _measured(run: dict[str, Any], action: Any) -> dict[str, Any]:
    run["load_before"] = os.getloadavg()[0]
    meter, started = CpuMeter(), time.perf_counter()
    run.update(action() or {})
    run["wall_s"] = time.perf_counter() - started
    run["cpu_s"] = meter.stop()
    return run


def bench_predict(paths: list[str], model: Path, workers: int, scratch: Path) -> dict[str, Any]:
    out = scratch / f"predict-{workers}.jsonl"
    options = ["--model", str(model), "--workers", str(workers), "--no-progress", "-o", str(out)]

    def action() -> None:
        assert predict_cli.main([*paths, *options]) == 0, "ser-predict failed"

    return _measured({"runner": "ser-predict", "workers": workers}, action)


def bench_batch(paths: list[str], model: Path, workers: int) -> dict[str, Any]:
    options = JobOptions.for_model(model, workers=workers, progress=False)

    def action() -> dict[str, Any]:
        started = time.perf_counter()
        first, errors = None, 0
        for table in score(paths, options):
            first = first or time.perf_counter() - started
            errors += table.num_rows - table["error"].null_count
        assert errors == 0, f"{errors} clips failed"
        return {"first_result_s": first}

    return _measured({"runner": "ser-batch", "workers": workers}, action)


def table(results: dict[str, Any]) -> str:
    lines = [
        "| model | runner | workers | wall (s) | first result (s) | audio s per s | vs ser-predict, one process | CPU s | audio s per CPU s | load average before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results["models"].items():
        base = runs[0]["audio_s_per_s"]
        for run in runs:
            first = run.get("first_result_s")
            lines.append(
                f"| {name} | {run['runner']} | {run['workers']} | {run['wall_s']:.1f} "
                f"| {f'{first:.1f}' if first else '-'} | {run['audio_s_per_s']:.0f} "
                f"| {run['audio_s_per_s'] / base:.2f}x | {run['cpu_s']:.1f} "
                f"| {run['audio_s_per_cpu_s']:.0f} | {run['load_before']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=5, help="score each clip this many times")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--out", type=Path, default=DOCS / "batch.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": machine(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        scratch = Path(tmp)
        clips, source = pick_clips(args.files, args.data_root, scratch)
        paths = clips * args.repeat
        audio = audio_seconds(paths)
        results.update(files=len(clips), repeat=args.repeat, source=source, audio_s=audio)
        print(f"{len(clips)} files x {args.repeat}, {audio / 60:.1f} min of audio: {source}")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.models}
        # ser-predict first: its process pool forks, which a process running Ray must not do.
        for name in args.models:
            runs[name] += [bench_predict(paths, MODELS[name], n, scratch) for n in (1, 2)]
        started = time.perf_counter()
        with ray_runtime(None):
            results["ray_start_s"] = time.perf_counter() - started
            for name in args.models:
                runs[name] += [bench_batch(paths, MODELS[name], n) for n in (1, 2)]
        for name in args.models:
            for run in runs[name]:
                run["audio_s_per_s"] = audio / run["wall_s"]
                run["audio_s_per_cpu_s"] = audio / run["cpu_s"]
                print(name, run)
        results["models"] = runs
    text = table(results)
    print(f"\nLocal Ray started in {results['ray_start_s']:.1f} s (not in the wall times).\n")
    print(text)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
