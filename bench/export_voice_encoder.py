"""Export Resemblyzer's pretrained speaker encoder to ONNX for bench/voice_encoder.py.

Runs in a venv with torch and resemblyzer, not the project's (see bench/voice_encoder.py)::

    /tmp/encoder-venv/bin/python bench/export_voice_encoder.py [--out PATH]

The default path is where bench/voice_encoder.py looks: ``$SER_VOICE_ENCODER`` or
``~/.cache/ser/voice-encoder/resemblyzer-ge2e.onnx``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

N_MELS = 40


def encoder_path() -> Path:
    """Where the exported encoder goes, and where bench/voice_encoder.py reads it."""
    default = Path.home() / ".cache" / "ser" / "voice-encoder" / "resemblyzer-ge2e.onnx"
    return Path(os.environ.get("SER_VOICE_ENCODER", default))


def export(out: Path) -> None:
    """Resemblyzer's encoder as ONNX: ``mels (batch, time, 40)`` -> ``frames (batch, time,
    256)`` (the last LSTM layer) and ``embedding (batch, 256)`` (its L2-normalised d-vector)."""
    # Imported here: bench/voice_encoder.py imports this module for encoder_path() in the
    # project's venv, which has neither.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=encoder_path())
    export(parser.parse_args().out)


if __name__ == "__main__":
    main()
