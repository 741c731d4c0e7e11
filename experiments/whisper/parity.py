"""Task 3: the ONNX encoder against CTranslate2's ``Whisper.encode`` on the same log-mel.

For each clip the log-mel is taken at the clip's own length (even frame count) and fed to
both; prints max abs diff and Pearson correlation of the (F/2, 384) outputs, for the float
ONNX model and the int8 one, and for CTranslate2's own int8 against its float32 (to show
what int8 costs either way). Also the mean-pooled vector's cosine, which is what the probe
uses.

Run (after export_onnx.py)::

    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.parity
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, OUT, ct2_model_dir, load_audio, say
from experiments.whisper.export_onnx import FLOAT_NAME, INT8_NAME, model_names
from experiments.whisper.frontend import WINDOW_SAMPLES, even_frames, log_mel

CLIPS = (
    "ravdess/Actor_01/03-01-05-02-01-01-01.flac",
    "ravdess/Actor_12/03-01-03-01-02-02-12.flac",
    "ravdess/Actor_23/03-01-01-01-01-01-23.flac",
    "tess/OAF_angry/OAF_back_angry.flac",
    "tess/YAF_sad/YAF_youth_sad.flac",
)


def session(path: Path):  # noqa: ANN201 - onnxruntime.InferenceSession
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def compare(name: str, ref: np.ndarray, got: np.ndarray) -> tuple[float, float, float]:
    diff = float(np.abs(ref - got).max())
    corr = float(np.corrcoef(ref.ravel(), got.ravel())[0, 1])
    a, b = ref.mean(axis=0), got.mean(axis=0)
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    say(f"    {name:28s} max|diff| {diff:8.4f}  corr {corr:.6f}  mean-pool cosine {cos:.6f}")
    return diff, corr, cos


def main() -> None:
    import ctranslate2

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    ct2 = {
        kind: ctranslate2.models.Whisper(
            str(ct2_model_dir()), device="cpu", compute_type=kind, intra_threads=1
        )
        for kind in ("float32", "int8")
    }
    onnx = {"float": session(args.out / FLOAT_NAME), "int8": session(args.out / INT8_NAME)}
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for rel in CLIPS:
        audio = load_audio(args.data / rel)
        for window, mel in (
            ("own length", even_frames(log_mel(audio))),
            ("30 s", log_mel(audio, pad_to=WINDOW_SAMPLES)),
        ):
            batch = np.ascontiguousarray(mel[None])
            ref = np.asarray(ct2["float32"].encode(ctranslate2.StorageView.from_array(batch)))[0]
            say(f"{rel} ({window}, mel {mel.shape}, output max|x| {np.abs(ref).max():.1f})")
            ct2_int8 = np.asarray(ct2["int8"].encode(ctranslate2.StorageView.from_array(batch)))[0]
            got = {k: s.run(["encoded"], {"mel": batch})[0][0] for k, s in onnx.items()}
            for name, out in (
                ("onnx float32 vs ct2 float32", got["float"]),
                ("onnx int8 vs ct2 float32", got["int8"]),
                ("ct2 int8 vs ct2 float32", ct2_int8),
            ):
                rows.setdefault(f"{name} ({window})", []).append(compare(name, ref, out))
    # The cut encoders (export_onnx.py --layers N) must give the full encoder's layer N.
    mel = np.ascontiguousarray(even_frames(log_mel(load_audio(args.data / CLIPS[0])))[None])
    full_hidden = onnx["float"].run(["hidden"], {"mel": mel})[0]
    for layers in (2, 3):
        path = args.out / model_names(layers)[0]
        if path.exists():
            cut = session(path).run(["hidden"], {"mel": mel})[0]
            diff = np.abs(cut[-1] - full_hidden[layers]).max()
            say(f"cut after {layers} layers vs full encoder's layer {layers}: max|diff| {diff:.2e}")
    say("summary over clips: worst max|diff|, lowest corr, lowest mean-pool cosine")
    for name, vals in rows.items():
        arr = np.array(vals)
        say(f"  {name:42s} {arr[:, 0].max():8.4f} {arr[:, 1].min():.6f} {arr[:, 2].min():.6f}")


if __name__ == "__main__":
    main()
