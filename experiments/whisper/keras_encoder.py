"""Whisper tiny.en's audio encoder rebuilt in Keras 3 from the CTranslate2 weights.

Architecture (openai-whisper ``AudioEncoder``): conv1 (80 -> 384, kernel 3, padding 1) and
GELU; conv2 (384 -> 384, kernel 3, stride 2, padding 1) and GELU; plus sinusoidal positions;
4 pre-norm transformer layers (6 heads of 64, MLP 1536 with GELU); final layer norm.
GELU is the exact (erf) one, as in whisper and CTranslate2's ``Activation.GELU``; layer
norms use epsilon 1e-5 like torch's default.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

WIDTH = 384
HEADS = 6
EPS = 1e-5


def _f32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def _gelu(x: tf.Tensor) -> tf.Tensor:
    # Written out with erf: TensorFlow's own gelu lowers to Erfc, which tf2onnx cannot convert.
    return 0.5 * x * (1.0 + tf.math.erf(x * np.float32(2**-0.5)))


class EncoderLayer(keras.layers.Layer):
    """One pre-norm transformer layer: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.attn_norm = keras.layers.LayerNormalization(epsilon=EPS)
        self.qkv = keras.layers.Dense(3 * WIDTH)
        self.out = keras.layers.Dense(WIDTH)
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=EPS)
        self.fc1 = keras.layers.Dense(4 * WIDTH)
        self.fc2 = keras.layers.Dense(WIDTH)

    def build(self, input_shape: tuple) -> None:
        for norm in (self.attn_norm, self.mlp_norm):
            norm.build(input_shape)
        self.qkv.build(input_shape)
        self.out.build(input_shape)
        self.fc1.build(input_shape)
        self.fc2.build((*input_shape[:-1], 4 * WIDTH))

    def call(self, x: tf.Tensor) -> tf.Tensor:
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        head_dim = WIDTH // HEADS

        def heads(t: tf.Tensor) -> tf.Tensor:  # (B, T, 384) -> (B, 6, T, 64)
            return tf.transpose(tf.reshape(t, (batch, frames, HEADS, head_dim)), (0, 2, 1, 3))

        q, k, v = tf.split(self.qkv(self.attn_norm(x)), 3, axis=-1)
        scores = tf.matmul(heads(q), heads(k), transpose_b=True) * (head_dim**-0.5)
        context = tf.matmul(tf.nn.softmax(scores, axis=-1), heads(v))
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (batch, frames, WIDTH))
        x = x + self.out(context)
        return x + self.fc2(_gelu(self.fc1(self.mlp_norm(x))))

    def load(self, variables: dict[str, np.ndarray], scope: str) -> None:
        """Copy ``encoder/layer_<i>`` weights (torch layout: Linear weight is (out, in))."""

        def dense(layer: keras.layers.Dense, name: str) -> None:
            layer.set_weights(
                [_f32(variables[f"{name}/weight"]).T, _f32(variables[f"{name}/bias"])]
            )

        def norm(layer: keras.layers.LayerNormalization, name: str) -> None:
            layer.set_weights([_f32(variables[f"{name}/gamma"]), _f32(variables[f"{name}/beta"])])

        norm(self.attn_norm, f"{scope}/self_attention/layer_norm")
        dense(self.qkv, f"{scope}/self_attention/linear_0")  # fused q, k, v (k's bias is 0)
        dense(self.out, f"{scope}/self_attention/linear_1")
        norm(self.mlp_norm, f"{scope}/ffn/layer_norm")
        dense(self.fc1, f"{scope}/ffn/linear_0")
        dense(self.fc2, f"{scope}/ffn/linear_1")


class WhisperEncoder(keras.layers.Layer):
    """The encoder. ``call`` maps log-mel (B, 80, F) to every layer's output.

    Returns a tuple ``(encoded, hidden)``: ``encoded`` (B, F/2, 384) is the final-norm
    output (what CTranslate2's ``Whisper.encode`` returns); ``hidden``
    (n_layers + 1, B, F/2, 384) stacks the input to layer 0 (convolutions + positions) and
    each layer's output, before the final norm, so the probe can compare layers.
    ``n_layers`` below 4 cuts the encoder short (Whisper itself has 4).
    """

    def __init__(self, n_layers: int = 4, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv1D(WIDTH, 3, padding="same")
        # Explicit symmetric padding: Keras' "same" with stride 2 pads only on the right,
        # which would shift every output frame by one input frame against torch's padding=1.
        self.pad2 = keras.layers.ZeroPadding1D(1)
        self.conv2 = keras.layers.Conv1D(WIDTH, 3, strides=2, padding="valid")
        self.layers_ = [EncoderLayer(name=f"layer_{i}") for i in range(n_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=EPS)
        self.positions: tf.Variable | None = None

    def build(self, input_shape: tuple | None = None) -> None:
        self.conv1.build((None, None, 80))
        self.conv2.build((None, None, WIDTH))
        for layer in self.layers_:
            layer.build((None, None, WIDTH))
        self.final_norm.build((None, None, WIDTH))
        self.positions = self.add_weight(shape=(1500, WIDTH), initializer="zeros", name="pos")

    def call(self, mel: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.transpose(mel, (0, 2, 1))  # (B, F, 80): Keras convolutions are channels-last
        x = _gelu(self.conv1(x))
        x = _gelu(self.conv2(self.pad2(x)))
        # Positions for the clip's own length (F/2 <= 1500 rows), not the 30 s table.
        assert self.positions is not None, "build() first"
        x = x + self.positions[: tf.shape(x)[1]][None]
        hidden = [x]
        for layer in self.layers_:
            x = layer(x)
            hidden.append(x)
        return self.final_norm(x), tf.stack(hidden)

    def load(self, variables: dict[str, np.ndarray]) -> None:
        """Copy the ``encoder/*`` variables of a CTranslate2 Whisper model."""
        self.build()
        for conv, name in ((self.conv1, "encoder/conv1"), (self.conv2, "encoder/conv2")):
            # torch Conv1d weight (out, in, k) -> Keras (k, in, out)
            kernel = _f32(variables[f"{name}/weight"]).transpose(2, 1, 0)
            conv.set_weights([kernel, _f32(variables[f"{name}/bias"])])
        for i, layer in enumerate(self.layers_):
            layer.load(variables, f"encoder/layer_{i}")
        self.final_norm.set_weights(
            [
                _f32(variables["encoder/layer_norm/gamma"]),
                _f32(variables["encoder/layer_norm/beta"]),
            ]
        )
        assert self.positions is not None
        self.positions.assign(_f32(variables["encoder/position_encodings/encodings"]))


def sinusoids(length: int = 1500, channels: int = WIDTH) -> np.ndarray:
    """openai-whisper's position table: [sin | cos] of geometric timescales 1..10000.

    Returns
    -------
    ndarray, shape (length, channels)
    """
    increment = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-increment * np.arange(channels // 2))
    scaled = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)
