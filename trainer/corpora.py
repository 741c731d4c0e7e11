"""Corpus readers: TESS, RAVDESS, EmoDB, EMOVO and TurEV-DB as released (WAV or FLAC), and a
CSV manifest.

Every clip keeps its speaker id, so evaluation can hold speakers out.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from service.contract import EMOTIONS

AUDIO_SUFFIXES = {".wav", ".flac"}


class CorpusError(ValueError):
    """A corpus folder or manifest cannot be read."""


@dataclass(frozen=True, slots=True)
class Clip:
    path: Path
    label: str  # one of the project's labels, or the corpus's own when not mapped
    speaker: str  # globally unique, e.g. "tess:OAF", "ravdess:07"
    corpus: str


TESS_EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprise",
    "sad": "sad",
}

RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
#: RAVDESS's own names mapped to the project's; "calm" is a choice (see ``calm_as``).
RAVDESS_TO_PROJECT = {
    "neutral": "neutral",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}

#: EmoDB's emotion letters (German initials); boredom ("L") has no project label.
EMODB_EMOTIONS = {
    "W": "angry",
    "E": "disgust",
    "A": "fear",
    "F": "happy",
    "N": "neutral",
    "T": "sad",
}
EMOVO_EMOTIONS = {
    "rab": "angry",
    "dis": "disgust",
    "pau": "fear",
    "gio": "happy",
    "neu": "neutral",
    "tri": "sad",
    "sor": "surprise",
}
#: TurEV-DB's folders; "Calm" maps to neutral, as RAVDESS's calm does by default.
TUREVDB_EMOTIONS = {"angry": "angry", "calm": "neutral", "happy": "happy", "sad": "sad"}

_TESS_NAME = re.compile(r"^(?P<speaker>OAF|YAF|OA)_(?P<word>.+)_(?P<emotion>[A-Za-z]+)$")
_RAVDESS_NAME = re.compile(
    r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)-"
    r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$"
)

_EMODB_NAME = re.compile(
    r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])$"
)
_EMOVO_NAME = re.compile(r"^(?P<emotion>[a-z]{3})-(?P<actor>[fm]\d)-(?P<sentence>[a-z]\d+)$")
_TUREVDB_NAME = re.compile(r"^(?P<speaker>\d+)_(?P<rest>.+)$")


def _audio_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise CorpusError(f"corpus folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise CorpusError(f"no .wav or .flac files under {root}")
    return files


def read_tess(root: str | Path) -> list[Clip]:
    """TESS (Kaggle layout). Label and speaker come from the file name, not the folder."""
    clips = []
    for path in _audio_files(Path(root)):
        match = _TESS_NAME.match(path.stem)
        if not match:
            raise CorpusError(f"unexpected TESS file name: {path}")
        emotion = match["emotion"].lower()
        if emotion not in TESS_EMOTIONS:
            raise CorpusError(f"unknown TESS emotion {emotion!r} in {path}")
        speaker = "OAF" if match["speaker"] == "OA" else match["speaker"]  # one file says OA
        clips.append(Clip(path, TESS_EMOTIONS[emotion], f"tess:{speaker}", "tess"))
    return clips


def read_ravdess(
    root: str | Path, *, calm_as: str | None = "neutral", native_labels: bool = False
) -> list[Clip]:
    """RAVDESS speech (``Actor_XX/03-01-EE-II-SS-RR-AA``).

    Parameters
    ----------
    calm_as : str or None
        Project label for RAVDESS "calm"; ``None`` drops calm clips.
    native_labels : bool
        Keep RAVDESS's eight labels (for its own 8-class protocol) instead of mapping.
    """
    clips = []
    for path in _audio_files(Path(root)):
        match = _RAVDESS_NAME.match(path.stem)
        if not match:
            raise CorpusError(f"unexpected RAVDESS file name: {path}")
        if match["modality"] != "03" or match["channel"] != "01":
            continue  # speech audio only
        native = RAVDESS_EMOTIONS.get(match["emotion"])
        if native is None:
            raise CorpusError(f"unknown RAVDESS emotion code in {path}")
        if native_labels:
            label: str | None = native
        elif native == "calm":
            label = calm_as
        else:
            label = RAVDESS_TO_PROJECT[native]
        if label is None:
            continue
        clips.append(Clip(path, label, f"ravdess:{match['actor']}", "ravdess"))
    return clips


def read_emodb(root: str | Path) -> list[Clip]:
    """EmoDB (flat ``SSTTTEV`` names: speaker, text, emotion letter, version).

    Boredom has no project label and is left out.
    """
    clips = []
    for path in _audio_files(Path(root)):
        match = _EMODB_NAME.match(path.stem)
        if not match:
            raise CorpusError(f"unexpected EmoDB file name: {path}")
        letter = match["emotion"]
        if letter == "L":
            continue
        if letter not in EMODB_EMOTIONS:
            raise CorpusError(f"unknown EmoDB emotion letter {letter!r} in {path}")
        clips.append(Clip(path, EMODB_EMOTIONS[letter], f"emodb:{match['speaker']}", "emodb"))
    return clips


def read_emovo(root: str | Path) -> list[Clip]:
    """EMOVO (``<actor>/<emotion>-<actor>-<sentence>``); the actor comes from the file name."""
    clips = []
    for path in _audio_files(Path(root)):
        match = _EMOVO_NAME.match(path.stem)
        if not match or match["emotion"] not in EMOVO_EMOTIONS:
            raise CorpusError(f"unexpected EMOVO file name: {path}")
        label = EMOVO_EMOTIONS[match["emotion"]]
        clips.append(Clip(path, label, f"emovo:{match['actor']}", "emovo"))
    return clips


def read_turevdb(root: str | Path) -> list[Clip]:
    """TurEV-DB (``<Emotion>/<speaker>_<initials>_<word>``): the folder is the label, the
    number before the first ``_`` the speaker."""
    clips = []
    for path in _audio_files(Path(root)):
        emotion = path.parent.name.lower()
        match = _TUREVDB_NAME.match(path.stem)
        if emotion not in TUREVDB_EMOTIONS or not match:
            raise CorpusError(f"unexpected TurEV-DB path: {path}")
        label = TUREVDB_EMOTIONS[emotion]
        clips.append(Clip(path, label, f"turevdb:{match['speaker']}", "turevdb"))
    return clips


def read_manifest(path: str | Path) -> list[Clip]:
    """A CSV with columns ``path,label[,speaker]``; relative paths are relative to the CSV."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"manifest not found: {path}")
    clips = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if not {"path", "label"} <= fields:
            raise CorpusError(f"{path} needs a header with at least 'path,label'")
        for line, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip().lower()
            if label not in EMOTIONS:
                raise CorpusError(f"{path}:{line}: label {label!r} is not one of {EMOTIONS}")
            clip_path = Path(row["path"])
            if not clip_path.is_absolute():
                clip_path = path.parent / clip_path
            speaker = (row.get("speaker") or "").strip() or f"unknown:{line}"
            clips.append(Clip(clip_path, label, f"{path.stem}:{speaker}", path.stem))
    if not clips:
        raise CorpusError(f"{path} lists no clips")
    return clips


def default_data_root() -> Path:
    """``../shared/data`` next to the repository, where the development corpora live."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load_corpora(
    specs: Iterable[str], *, data_root: Path | None = None, calm_as: str | None = "neutral"
) -> list[Clip]:
    """Read corpora named in :data:`CORPORA`, as ``name=PATH``, or a manifest ``*.csv``."""
    root = data_root or default_data_root()
    clips: list[Clip] = []
    for spec in specs:
        name, _, explicit = spec.partition("=")
        if spec.endswith(".csv"):
            clips += read_manifest(spec)
        elif name == "tess":
            clips += read_tess(Path(explicit) if explicit else root / "tess")
        elif name == "ravdess":
            clips += read_ravdess(Path(explicit) if explicit else root / "ravdess", calm_as=calm_as)
        elif name in _READERS:
            clips += _READERS[name](Path(explicit) if explicit else root / name)
        else:
            known = ", ".join(CORPORA)
            raise CorpusError(f"unknown corpus {spec!r}: use {known}, NAME=PATH or a .csv")
    return clips


_READERS = {"tess": read_tess, "emodb": read_emodb, "emovo": read_emovo, "turevdb": read_turevdb}
#: The corpora ``load_corpora`` reads by name, each from ``<data root>/<name>``.
CORPORA = ("tess", "ravdess", "emodb", "emovo", "turevdb")
