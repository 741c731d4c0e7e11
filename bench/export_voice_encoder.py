"""Export Resemblyzer's pretrained speaker encoder to ONNX: how the encoder the service ships
(``service/encoders/resemblyzer-ge2e.onnx``, used by the ``speech-stats-v2+ge2e`` feature set)
was made, and how to remake it. The export is deterministic: the same file, byte for byte.

Runs in a venv with torch and resemblyzer, not the project's::

    python3.11 -m venv /tmp/encoder-venv
    /tmp/encoder-venv/bin/pip install torch==2.13.0 onnx onnxruntime scipy librosa
    /tmp/encoder-venv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/encoder-venv/bin/python bench/export_voice_encoder.py [--out PATH]

``--out`` defaults to ``$SER_VOICE_ENCODER`` or the shipped file, which the repository stores
packed (``resemblyzer-ge2e.onnx.planes.xz``, lossless; the export packs it). A file with other
bytes is refused by the feature set (its SHA-256 is in the configuration models are trained on).

The int8 encoder the accurate model runs (``resemblyzer-ge2e-int8.onnx``, feature set
``speech-stats-v2+ge2e-int8``) is made from the float file in the project's own venv (it needs
onnx and onnxruntime, not torch), also byte for byte::

    .venv/bin/python bench/export_voice_encoder.py --quantize
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

N_MELS = 40
SHIPPED = Path(__file__).resolve().parent.parent / "service" / "encoders" / "resemblyzer-ge2e.onnx"
SHIPPED_INT8 = SHIPPED.with_name("resemblyzer-ge2e-int8.onnx")


def encoder_path() -> Path:
    """Where the export goes by default."""
    return Path(os.environ.get("SER_VOICE_ENCODER", SHIPPED))


def export(out: Path) -> None:
    """Resemblyzer's encoder as ONNX: ``mels (batch, time, 40)`` -> ``frames (batch, time,
    256)`` (the last LSTM layer) and ``embedding (batch, 256)`` (its L2-normalised d-vector)."""
    # Imported here, so that --help works without torch (the project venv has none).
    import onnxruntime as ort
    import torch
    from resemblyzer.voice_encoder import VoiceEncoder

    encoder = VoiceEncoder("cpu", verbose=False).eval()

    class Outputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, mels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            frames, (hidden, _) = self.encoder.lstm(mels)
            # VoiceEncoder.forward's embedding, from the same pass.
            embedding = torch.relu(self.encoder.linear(hidden[-1]))
            return frames, embedding / torch.norm(embedding, dim=1, keepdim=True)

    module = Outputs().eval()
    example = torch.rand(1, 160, N_MELS)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module,
        (example,),
        str(out),
        input_names=["mels"],
        output_names=["frames", "embedding"],
        dynamic_axes={"mels": {1: "time"}, "frames": {1: "time"}},
        opset_version=17,
        dynamo=False,
    )
    check = torch.rand(1, 300, N_MELS)
    with torch.no_grad():
        want_frames, want_embedding = module(check)
    got_frames, got_embedding = ort.InferenceSession(str(out)).run(None, {"mels": check.numpy()})
    parity = max(
        float(np.abs(got_frames - want_frames.numpy()).max()),
        float(np.abs(got_embedding - want_embedding.numpy()).max()),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); ONNX vs torch max |diff| {parity:.1e}")


def quantize(source: bytes, *, float_layers: int = 1, per_channel: bool = True) -> bytes:
    """The float encoder file's ``source`` bytes under onnxruntime's dynamic int8 quantisation
    of its LSTM layers after the first ``float_layers``, weights per output channel unless
    ``per_channel`` is False. The defaults make the shipped int8 file.

    The first layer stays float: its input is mel *power*, many decades wide, and dynamic
    quantisation gives an input tensor one uint8 scale, so the quiet bands round to zero. All
    three layers quantised, the outputs correlate with the float ones at a median 0.36-0.67;
    with the first left float, at 0.997 or more, median 0.999 (``bench/voice_encoder.py
    fidelity``), in 0.58 of the float LSTM's time.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(source)
    lstms = [node.name for node in model.graph.node if node.op_type == "LSTM"]
    if len(lstms) != 3:
        raise ValueError(f"expected Resemblyzer's 3 LSTM layers, found {lstms}")
    # The quantiser works on files.
    with tempfile.TemporaryDirectory() as scratch:
        float_path, int8_path = Path(scratch, "float.onnx"), Path(scratch, "int8.onnx")
        float_path.write_bytes(source)
        quantize_dynamic(
            str(float_path),
            str(int8_path),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=lstms[:float_layers],
        )
        return int8_path.read_bytes()


def _service_features() -> ModuleType:
    """``service.features``, imported only when needed: the export runs in a venv of its own."""
    sys.path.insert(0, str(SHIPPED.parents[2]))
    from service import features

    return features


def _store_packed(out: Path, data: bytes) -> None:
    """Write ``data`` as the repository stores encoders: packed, lossless, under 5 MB."""
    features = _service_features()
    packed = out.with_name(out.name + features.PACKED_SUFFIX)
    packed.write_bytes(features.pack_encoder(data))
    print(f"packed {out.name} as {packed} ({packed.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="make the int8 encoder from the shipped float one (no torch needed)",
    )
    args = parser.parse_args()
    if args.quantize:
        out = args.out or SHIPPED_INT8
        data = quantize(_service_features().read_encoder(SHIPPED))
        if out == SHIPPED_INT8:
            _store_packed(out, data)
        else:
            out.write_bytes(data)
        print(f"int8 encoder: {len(data) / 1e6:.1f} MB")
        return
    out = args.out or encoder_path()
    export(out)
    if out == SHIPPED:
        _store_packed(out, out.read_bytes())
        out.unlink()


if __name__ == "__main__":
    main()
