"""Task 2: build the Keras encoder from ``model.bin`` and export it to ONNX with tf2onnx.

Writes ``/tmp/whisper/whisper_tiny_en_encoder.onnx`` (float32; input ``mel`` (B, 80, F) with
F even and <= 3000; outputs ``encoded`` (B, F/2, 384) and ``hidden`` (5, B, F/2, 384)) and
``..._int8.onnx`` (MatMul weights quantised per channel, dynamic activations).

Run::

    taskset -c 1 /tmp/wvenv/bin/python experiments/whisper/export_onnx.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from common import OUT, ct2_model_dir, say  # noqa: E402
from ct2_weights import read_model_bin  # noqa: E402

FLOAT_NAME = "whisper_tiny_en_encoder.onnx"
INT8_NAME = "whisper_tiny_en_encoder_int8.onnx"


def export(out_dir: Path, opset: int) -> Path:
    import tensorflow as tf
    import tf2onnx
    from keras_encoder import WhisperEncoder, sinusoids

    _, variables = read_model_bin(ct2_model_dir() / "model.bin")
    table = variables["encoder/position_encodings/encodings"].astype(np.float32)
    say(
        "stored position table vs whisper's sinusoids: max abs diff "
        f"{np.abs(table - sinusoids()).max():.2e} (float16 storage)"
    )
    encoder = WhisperEncoder(name="whisper_encoder")
    encoder.load(variables)

    @tf.function(input_signature=[tf.TensorSpec((None, 80, None), tf.float32, name="mel")])
    def encode(mel: tf.Tensor) -> dict[str, tf.Tensor]:
        encoded, hidden = encoder(mel)
        return {
            "encoded": tf.identity(encoded, name="encoded"),
            "hidden": tf.identity(hidden, name="hidden"),
        }

    path = out_dir / FLOAT_NAME
    tf2onnx.convert.from_function(
        encode,
        input_signature=encode.input_signature,
        opset=opset,
        output_path=str(path),
    )
    say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def quantise(float_path: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = float_path.with_name(INT8_NAME)
    quantize_dynamic(
        str(float_path),
        str(path),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quantise(export(args.out, args.opset))


if __name__ == "__main__":
    main()
