"""Task 4: cost of the Whisper encoder features on a 3 s clip, one core.

Medians (wall and process CPU time) of ``--repeats`` runs (10 for the 30 s windows), after
warm-up, run round-robin, of: librosa's MFCC-40 (the yardstick, same clip, same run),
Whisper's numpy log-mel, the ONNX encoder (float32 and int8, onnxruntime with one intra-op
thread) at the clip's own length and padded to Whisper's 30 s window, the encoder cut after
2 or 3 layers (``export_onnx.py --layers N``), and CTranslate2's ``encode`` for reference. Pin to one core and one BLAS thread::

    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.speed
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, OUT, ct2_model_dir, load_audio, say
from experiments.whisper.export_onnx import FLOAT_NAME, INT8_NAME, model_names
from experiments.whisper.frontend import WINDOW_SAMPLES, even_frames, log_mel
from experiments.whisper.parity import session

CLIP = "ravdess/Actor_01/03-01-05-02-01-01-01.flac"


def interleaved_medians(
    cases: dict[str, Callable[[], object]], repeats: dict[str, int], warmup: int = 5
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall time and median process CPU time, in ms, of each case, run round-robin.

    Round-robin rather than one case after another, so that a burst of load from other
    processes on the shared core lands on every case alike instead of on whichever case
    happened to run then. The CPU time (all threads of this process) is what a case costs
    when it has the core to itself; the wall time also holds the waits for a busy core.
    """
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(max(repeats.values())):
        for name, fn in cases.items():
            if round_ < repeats[name]:
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return (
        {name: float(np.median(t) * 1e3) for name, t in wall.items()},
        {name: float(np.median(t) * 1e3) for name, t in cpu.items()},
    )


def main() -> None:
    import ctranslate2
    import librosa

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--cuts", type=int, nargs="*", default=[2, 3], help="encoders cut after N layers"
    )
    args = parser.parse_args()

    n = int(args.seconds * 16000)
    audio = load_audio(args.data / CLIP)
    audio = np.pad(audio[:n], (0, max(0, n - len(audio))))
    own = even_frames(log_mel(audio))[None]
    padded = log_mel(audio, pad_to=WINDOW_SAMPLES)[None]
    onnx = {"float32": session(args.out / FLOAT_NAME), "int8": session(args.out / INT8_NAME)}
    ct2 = {
        kind: ctranslate2.models.Whisper(
            str(ct2_model_dir()), device="cpu", compute_type=kind, intra_threads=1
        )
        for kind in ("float32", "int8")
    }

    def ct2_encode(kind: str, mel: np.ndarray) -> Callable[[], object]:
        return lambda: ct2[kind].encode(ctranslate2.StorageView.from_array(mel), to_cpu=True)

    def onnx_encode(kind: str, mel: np.ndarray) -> Callable[[], object]:
        return lambda: onnx[kind].run(["encoded"], {"mel": mel})

    def onnx_hidden(cut: object, mel: np.ndarray) -> Callable[[], object]:
        return lambda: cut.run(["hidden"], {"mel": mel})  # type: ignore[attr-defined]

    cases: dict[str, Callable[[], object]] = {
        "librosa mfcc n_mfcc=40": lambda: librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=40),
        "whisper log-mel (own length)": lambda: log_mel(audio),
        "whisper log-mel (30 s)": lambda: log_mel(audio, pad_to=WINDOW_SAMPLES),
    }
    for kind in ("float32", "int8"):
        cases[f"onnx {kind} encoder (own length)"] = onnx_encode(kind, own)
        cases[f"onnx {kind} encoder (30 s)"] = onnx_encode(kind, padded)
        cases[f"ct2 {kind} encode (own length)"] = ct2_encode(kind, own)
        cases[f"ct2 {kind} encode (30 s)"] = ct2_encode(kind, padded)
    for layers in args.cuts:
        for kind, name in zip(("float32", "int8"), model_names(layers), strict=True):
            if (args.out / name).exists():
                cases[f"onnx {kind} layers 1-{layers} (own length)"] = onnx_hidden(
                    session(args.out / name), own
                )
    repeats = {name: args.repeats if "30 s" not in name else 10 for name in cases}
    wall, cpu = interleaved_medians(cases, repeats)
    say(f"{args.seconds:g} s clip ({n} samples, mel {own.shape[1:]}); medians, wall and CPU time:")
    say(f"  {'':52s} {'wall':>8s} {'x MFCC':>7s} {'cpu':>8s} {'x MFCC':>7s}")

    def row(name: str, keys: list[str]) -> None:
        w, c = sum(wall[k] for k in keys), sum(cpu[k] for k in keys)
        w_ref, c_ref = wall["librosa mfcc n_mfcc=40"], cpu["librosa mfcc n_mfcc=40"]
        say(f"  {name:52s} {w:8.2f} {w / w_ref:7.2f} {c:8.2f} {c / c_ref:7.2f}")

    for name in cases:
        row(name, [name])
    for kind in ("float32", "int8"):
        encoders = [f"onnx {kind} encoder ({window})" for window in ("own length", "30 s")]
        encoders += [f"onnx {kind} layers 1-{layers} (own length)" for layers in args.cuts]
        for encoder in encoders:
            if encoder in cases:
                window = "30 s" if "30 s" in encoder else "own length"
                row("log-mel + " + encoder, [f"whisper log-mel ({window})", encoder])


if __name__ == "__main__":
    main()
