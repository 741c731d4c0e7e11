"""Task 2: build the Keras encoder from ``model.bin`` and export it to ONNX with tf2onnx.

Writes ``/tmp/whisper/whisper_tiny_en_encoder.onnx`` (float32; input ``mel`` (B, 80, F) with
F even and <= 3000; outputs ``encoded`` (B, F/2, 384) and ``hidden`` (5, B, F/2, 384)) and
``..._int8.onnx`` (MatMul weights quantised per channel, dynamic activations).
``--layers 3`` (say) builds only the first 3 transformer layers instead, to time an encoder
cut where the probe finds emotion best (``..._l3.onnx``; there ``hidden`` ends with layer 3's
output and ``encoded`` is that output through the final norm, which is not Whisper's).

Run::

    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.export_onnx

The encoder the service ships (``service/encoders/whisper-tiny-en-l3-int8.onnx``, stored
packed as ``.planes.xz``; ``WhisperEncoderConfig`` in ``service/features/whisper.py``) is
``whisper_tiny_en_encoder_int8_l3.onnx`` from, in the README's venv (tf2onnx 1.17.0,
TensorFlow 2.21, Keras 3.15, onnxruntime 1.32)::

    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.export_onnx \\
        --layers 3
    .venv/bin/python -c "from pathlib import Path; from service.features import pack_encoder; \\
        Path('service/encoders/whisper-tiny-en-l3-int8.onnx.planes.xz').write_bytes( \\
        pack_encoder(Path('/tmp/whisper/whisper_tiny_en_encoder_int8_l3.onnx').read_bytes()))"

The export is not byte for byte reproducible: tf2onnx's optimiser keeps a different one of
each set of duplicate constants and Shape nodes on each run (so their names and the node order
differ), with or without ``PYTHONHASHSEED``. Four reruns gave four SHA-256s, every one with the
same weights and bit-identical outputs to the shipped file on the same input (2026-12-07). As
for the GE2E encoder, the contract is the shipped file's SHA-256,
``efde1b875565ea23dcec1ae65b553fcfa0ee1b14b2850971c748ae21adfc2e18``; a re-export must be
checked against it by its outputs, and changes the feature set's configuration if shipped.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from experiments.whisper.common import OUT, ct2_model_dir, say  # noqa: E402
from experiments.whisper.ct2_weights import read_model_bin  # noqa: E402

FLOAT_NAME = "whisper_tiny_en_encoder.onnx"
INT8_NAME = "whisper_tiny_en_encoder_int8.onnx"


def model_names(layers: int = 4) -> tuple[str, str]:
    """File names of the float and int8 models for an encoder cut after ``layers`` layers."""
    if layers == 4:
        return FLOAT_NAME, INT8_NAME
    return FLOAT_NAME.replace(".onnx", f"_l{layers}.onnx"), INT8_NAME.replace(
        ".onnx", f"_l{layers}.onnx"
    )


def export(out_dir: Path, opset: int, layers: int = 4) -> Path:
    import tensorflow as tf
    import tf2onnx

    from experiments.whisper.keras_encoder import WhisperEncoder, sinusoids

    _, variables = read_model_bin(ct2_model_dir() / "model.bin")
    table = variables["encoder/position_encodings/encodings"].astype(np.float32)
    say(
        "stored position table vs whisper's sinusoids: max abs diff "
        f"{np.abs(table - sinusoids()).max():.2e} (float16 storage)"
    )
    encoder = WhisperEncoder(n_layers=layers, name="whisper_encoder")
    encoder.load(variables)

    @tf.function(input_signature=[tf.TensorSpec((None, 80, None), tf.float32, name="mel")])
    def encode(mel: tf.Tensor) -> dict[str, tf.Tensor]:
        encoded, hidden = encoder(mel)
        return {
            "encoded": tf.identity(encoded, name="encoded"),
            "hidden": tf.identity(hidden, name="hidden"),
        }

    path = out_dir / model_names(layers)[0]
    tf2onnx.convert.from_function(
        encode,
        input_signature=encode.input_signature,
        opset=opset,
        output_path=str(path),
    )
    say(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return path


def quantise(float_path: Path, layers: int = 4) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = float_path.with_name(model_names(layers)[1])
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
    parser.add_argument("--layers", type=int, default=4, choices=(1, 2, 3, 4))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    quantise(export(args.out, args.opset, args.layers), args.layers)


if __name__ == "__main__":
    main()
