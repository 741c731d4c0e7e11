"""Pretrained encoders (ONNX) as features: how their files are stored and checked
(:class:`PretrainedEncoder`), and Resemblyzer's speaker encoder (:class:`VoiceEncoder`, the
encoder of ``speech-stats-v2+ge2e-int8``, the features of ``models/ser-accurate.onnx``).
:mod:`~service.features.combined` appends encoders' outputs to the speech statistics."""

from __future__ import annotations

import dataclasses
import hashlib
import lzma
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from service.features.frontend import (
    DB_PER_NEPER,
    FeatureError,
    SpectralConfig,
    SpectralFrontend,
    validated,
)
from service.features.tracks import column_mean_std

#: Where the pretrained encoders that feature sets run live: inside the package, so the
#: weights are versioned with the code that feeds them and installed wherever it is.
ENCODER_DIR = Path(__file__).resolve().parent.parent / "encoders"

#: The encoder's output groups, in order: the utterance embedding (the d-vector), and the mean
#: and the standard deviation over frames of the last layer.
ENCODER_PARTS = ("embedding", "mean", "std")


@dataclass(frozen=True)
class VoiceEncoderConfig:
    """A pretrained frame encoder (ONNX) and the front end it was trained on.

    The default is the encoder the service ships: Resemblyzer's GE2E speaker encoder
    (``resemblyzer==0.1.4``, Apache-2.0; a 3-layer LSTM of 256 over 40 power-mel bands of 25 ms
    every 10 ms, trained for speaker verification on thousands of voices), its first LSTM layer
    float and the other two dynamic int8 with weights per output channel
    (``experiments/export_voice_encoder.py --quantize``, byte for byte from the float export).
    The first layer's input is mel power, many decades wide, which one int8 scale cannot hold:
    quantised too, it wrecks the outputs (docs/experiments.md). The file's SHA-256 is part of
    the configuration, so a model trained on one encoder file is refused by a service holding
    another.
    """

    #: What a combined feature set records as this encoder's kind (not a field: the recorded
    #: configuration of ``speech-stats-v2+ge2e-int8`` has none).
    KIND: ClassVar[str] = "ge2e"

    file: str = "resemblyzer-ge2e-int8.onnx"
    sha256: str = "0e0ce85d4299ee877169c823b9a04f53bcee6296cf6d60d6bda8a66ba0742a55"
    source: str = (
        "resemblyzer==0.1.4 VoiceEncoder (GE2E), Apache-2.0; LSTM layers 2-3 in int8 "
        "(onnxruntime quantize_dynamic, per channel)"
    )
    #: Resemblyzer's ``wav_to_mel_spectrogram``: librosa's melspectrogram, power, no dB.
    spectral: SpectralConfig = SpectralConfig(
        n_fft=400, win_length=400, hop_length=160, n_mels=40, top_db=None
    )
    #: Resemblyzer's ``normalize_volume(wav, -30, increase_only=True)``.
    target_dbfs: float = -30.0
    #: The LSTM needs a few frames to say anything; shorter clips are zero-padded to this.
    min_frames: int = 20
    hidden: int = 256
    #: Output groups, in order, among :data:`ENCODER_PARTS`.
    parts: tuple[str, ...] = ENCODER_PARTS
    #: Run the LSTM only from the first to the last frame within this many dB of the loudest
    #: (None: every frame). Resemblyzer trims silences before it embeds. Fed the pauses around
    #: a recording, the frame statistics learn the corpus's room tone: trimmed, the transfer
    #: between corpora gains 4-12 points (docs/experiments.md), and the LSTM runs fewer
    #: steps (half on RAVDESS's clips).
    edge_trim_db: float | None = 40.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["parts"] = list(self.parts)
        return out


#: How an encoder file is stored in the repository: its bytes in four planes (every first
#: byte of each 4-byte word, then every second, ...), xz-compressed. Lossless, and the planes
#: of float32 weights compress where the interleaved bytes do not (5.7 MB -> 4.8 MB).
PACKED_SUFFIX = ".planes.xz"


def pack_encoder(data: bytes) -> bytes:
    """The stored form of an encoder file's ``data`` (see :data:`PACKED_SUFFIX`)."""
    words = len(data) // 4 * 4
    planes = np.frombuffer(data[:words], dtype=np.uint8).reshape(-1, 4).T.tobytes()
    return lzma.compress(planes + data[words:], preset=9 | lzma.PRESET_EXTREME)


def unpack_encoder(packed: bytes) -> bytes:
    """The encoder file's bytes from :func:`pack_encoder`'s output."""
    raw = lzma.decompress(packed)
    words = len(raw) // 4 * 4
    interleaved = np.frombuffer(raw[:words], dtype=np.uint8).reshape(4, -1).T.tobytes()
    return interleaved + raw[words:]


def read_encoder(path: Path) -> bytes:
    """The bytes of the encoder file at ``path``, or of its packed form beside it.

    Raises :class:`FeatureError` if neither can be read.
    """
    try:
        if path.exists():
            return path.read_bytes()
        return unpack_encoder(path.with_name(path.name + PACKED_SUFFIX).read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise FeatureError(f"voice encoder not readable: {exc}") from exc


class PretrainedEncoder:
    """An ONNX encoder file in :data:`ENCODER_DIR`, checked against its SHA-256 and run in one
    thread. What the encoders that feature sets run share."""

    def __init__(self, file: str, sha256: str) -> None:
        self._file = file
        self._sha256 = sha256
        self._lock = threading.Lock()
        self._session: Any = None
        self._session_pid = -1

    @property
    def path(self) -> Path:
        return ENCODER_DIR / self._file

    def session(self) -> Any:
        """The onnxruntime session, made on first use in each process (a session does not
        survive a fork, and the trainer's extraction workers are forked).

        Raises :class:`FeatureError` if the file is missing or is not the configured one.
        """
        if self._session is not None and self._session_pid == os.getpid():
            return self._session
        with self._lock:
            if self._session is None or self._session_pid != os.getpid():
                import onnxruntime as ort  # noqa: PLC0415 - only feature sets with an encoder

                data = read_encoder(self.path)
                digest = hashlib.sha256(data).hexdigest()
                if digest != self._sha256:
                    raise FeatureError(
                        f"encoder {self.path} has SHA-256 {digest}, but this feature set "
                        f"was defined on {self._sha256}: features would drift"
                    )
                options = ort.SessionOptions()
                # One clip's encoding is sequential work: the parallelism is the server's
                # workers (and the trainer's processes), as for the other features.
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
                self.check_session(session)
                self._session = session
                self._session_pid = os.getpid()
        return self._session

    def check_session(self, session: Any) -> None:
        """Raise :class:`FeatureError` if ``session`` cannot give what the configuration asks
        for (nothing to check here)."""


class VoiceEncoder(PretrainedEncoder):
    """Runs a :class:`VoiceEncoderConfig`'s network on audio; output ``(hidden * parts,)``."""

    def __init__(self, config: VoiceEncoderConfig) -> None:
        unknown = set(config.parts) - set(ENCODER_PARTS)
        if unknown or not config.parts:
            raise FeatureError(f"encoder parts must be among {ENCODER_PARTS}, not {config.parts}")
        if config.edge_trim_db is not None and not config.edge_trim_db > 0:
            raise FeatureError(f"edge_trim_db must be positive or None, not {config.edge_trim_db}")
        super().__init__(config.file, config.sha256)
        self.config = config
        self.frontend = SpectralFrontend(config.spectral, n_mfcc=0)

    @property
    def dim(self) -> int:
        return self.config.hidden * len(self.config.parts)

    def names(self, prefix: str = "ge2e") -> list[str]:
        """Column names, ``<prefix>_<part><i>``, in output order."""
        hidden = self.config.hidden
        return [f"{prefix}_{part}{i}" for part in self.config.parts for i in range(hidden)]

    def mel_power(self, samples: np.ndarray) -> np.ndarray:
        """The encoder's input: power mel frames ``(frames, n_mels)`` of the clip with its
        volume raised (never lowered) to the target level, quiet edges trimmed."""
        config = self.config
        y = validated(samples)
        mean_square = float(np.dot(y, y)) / y.shape[0]
        dbfs = DB_PER_NEPER * math.log(mean_square + 1e-12)
        if dbfs < config.target_dbfs:
            y = y * np.float32(10.0 ** ((config.target_dbfs - dbfs) / 20.0))
        mels = self.frontend.mel_power(self.frontend.power_of_validated(y))
        if config.edge_trim_db is not None:
            level = DB_PER_NEPER * np.log(mels.sum(axis=1, dtype=np.float64) + 1e-12)
            loud = np.flatnonzero(level > level.max() - config.edge_trim_db)
            mels = mels[loud[0] : loud[-1] + 1]
        return np.ascontiguousarray(mels)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Encoder outputs of shape ``(dim,)``, float32, for mono ``samples`` ``(n,)``."""
        mels = self.mel_power(samples)
        if mels.shape[0] < self.config.min_frames:
            mels = np.pad(mels, ((0, self.config.min_frames - mels.shape[0]), (0, 0)))
        frames, embedding = self.session().run(None, {"mels": mels[None]})
        means, stds = column_mean_std(frames[0].astype(np.float64))
        outputs = {"embedding": embedding[0], "mean": means, "std": stds}
        return np.concatenate([outputs[part] for part in self.config.parts]).astype(np.float32)
