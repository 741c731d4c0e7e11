"""Make the speaker encoder the service ships, ``service/encoders/resemblyzer-ge2e-int8.onnx``
(feature set ``speech-stats-v2+ge2e-int8``, run by the opt-in accurate model), from
Resemblyzer's pretrained GE2E encoder: export it to ONNX in float (torch), then quantise its
last two LSTM layers to int8 (onnxruntime). Both steps are deterministic: the same files, byte
for byte. The int8 file's SHA-256 is in the feature set's configuration, so a file with other
bytes is refused by the service and the trainer.

Still runnable. The float export needs a venv with torch and resemblyzer, not the project's;
from the repository root::

    python3.11 -m venv /tmp/encoder-venv
    /tmp/encoder-venv/bin/pip install torch==2.13.0 onnx onnxruntime scipy librosa
    /tmp/encoder-venv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/encoder-venv/bin/python -m experiments.export_voice_encoder [--float-out PATH]

writes the float encoder to ``--float-out`` (default ``$SER_VOICE_ENCODER`` or
``~/.cache/ser/voice-encoder/resemblyzer-ge2e.onnx``; the service no longer ships it), then
the int8 one, packed as the repository stores encoders
(``resemblyzer-ge2e-int8.onnx.planes.xz``, lossless), and says whether it is the shipped file.

The quantisation alone runs in the project's venv (onnx and onnxruntime, no torch), from a
float file or its packed form, e.g. the one the repository held until the float encoder
stopped shipping::

    git show ff304b2:service/encoders/resemblyzer-ge2e.onnx.planes.xz > /tmp/float.planes.xz
    .venv/bin/python -m experiments.export_voice_encoder --quantize /tmp/float.planes.xz

``--out PATH`` writes the int8 file there, unpacked, instead of over the shipped one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from types import ModuleType

import numpy as np

N_MELS = 40
ENCODERS = Path(__file__).resolve().parent.parent / "service" / "encoders"
SHIPPED_INT8 = ENCODERS / "resemblyzer-ge2e-int8.onnx"


def float_path() -> Path:
    """Where the float export goes by default."""
    default = Path.home() / ".cache" / "ser" / "voice-encoder" / "resemblyzer-ge2e.onnx"
    return Path(os.environ.get("SER_VOICE_ENCODER", default))


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
    with the first left float, at 0.997 or more, median 0.999 (measured on corpus clips by
    the former ``voice_encoder.py fidelity``; docs/experiments.md), in 0.58 of the float
    LSTM's time.
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
    """``service.features``, imported only when needed: the export runs in a venv of its own
    (from the repository root, which puts the checkout's packages on the path)."""
    from service import features

    return features


def read_float(path: Path) -> bytes:
    """A float encoder file's bytes, from the file or from its packed form."""
    features = _service_features()
    if path.name.endswith(features.PACKED_SUFFIX):
        return features.unpack_encoder(path.read_bytes())
    return features.read_encoder(path)


def write_int8(data: bytes, out: Path | None) -> None:
    """Write the int8 encoder: packed over the shipped file, or as is to ``out``; say whether
    it is the file the service's configuration names."""
    features = _service_features()
    if out is None:
        packed = SHIPPED_INT8.with_name(SHIPPED_INT8.name + features.PACKED_SUFFIX)
        packed.write_bytes(features.pack_encoder(data))
        print(f"packed the int8 encoder as {packed} ({packed.stat().st_size / 1e6:.1f} MB)")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        print(f"wrote {out} ({len(data) / 1e6:.1f} MB)")
    digest = hashlib.sha256(data).hexdigest()
    shipped = features.VoiceEncoderConfig().sha256
    verdict = "the shipped encoder, byte for byte" if digest == shipped else f"NOT {shipped}"
    print(f"int8 encoder SHA-256 {digest}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.export_voice_encoder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--float-out", type=Path, default=None, help="where the float export goes")
    parser.add_argument(
        "--quantize",
        type=Path,
        metavar="FLOAT_FILE",
        help="skip the export: make the int8 encoder from this float file (no torch needed)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="the int8 file (default: the shipped one, packed)"
    )
    args = parser.parse_args()
    if args.quantize is None:
        float_file = args.float_out or float_path()
        export(float_file)
    else:
        float_file = args.quantize
    write_int8(quantize(read_float(float_file)), args.out)


if __name__ == "__main__":
    main()
