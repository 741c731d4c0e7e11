"""The Keras networks. Input standardisation lives inside the model, so the exported
graph takes raw features and the service needs no separate scaler."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from trainer.config import TrainConfig  # noqa: E402,F401  (re-exported)


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


@keras.saving.register_keras_serializable(package="ser")
class Standardise(keras.layers.Layer):
    """``(x - mean) / std`` with fixed statistics held as non-trainable weights.

    Keras's ``Normalization`` keeps them as captured eager tensors, which tf2onnx turns
    into extra graph inputs; weights are frozen into constants instead.
    """

    def __init__(self, mean: Any, std: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_mean = np.asarray(mean, dtype="float32")
        self._init_std = np.asarray(std, dtype="float32")

    def build(self, input_shape: Any) -> None:
        dim = self._init_mean.shape[-1]
        self.mean = self.add_weight(
            shape=(dim,),
            initializer=keras.initializers.Constant(self._init_mean),
            trainable=False,
            name="mean",
        )
        self.inv_std = self.add_weight(
            shape=(dim,),
            initializer=keras.initializers.Constant(1.0 / self._init_std),
            trainable=False,
            name="inv_std",
        )

    def call(self, inputs: Any) -> Any:
        return (inputs - self.mean) * self.inv_std

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mean": self._init_mean.tolist(),
            "std": self._init_std.tolist(),
        }


@keras.saving.register_keras_serializable(package="ser")
class Temperature(keras.layers.Layer):
    """``softmax(log(p) / T)``: temperature scaling baked into the exported graph."""

    def __init__(self, temperature: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = float(temperature)

    def call(self, probs: Any) -> Any:
        logits = keras.ops.log(keras.ops.maximum(probs, 1e-12)) / self.temperature
        return keras.ops.softmax(logits, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """The same network with calibrated outputs; the original is left unchanged."""
    outputs = Temperature(temperature, name="calibrated")(model.output)
    return keras.Model(model.input, outputs, name=model.name)


@keras.saving.register_keras_serializable(package="ser")
class LeadingColumns(keras.layers.Layer):
    """The first ``count`` features of each row: the input of a network that reads only the
    leading part of a feature vector (the statistics ahead of an encoder's outputs)."""

    def __init__(self, count: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = int(count)

    def call(self, inputs: Any) -> Any:
        return inputs[:, : self.count]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="ser")
class WeightedMean(keras.layers.Layer):
    """``(1 - weight) * first + weight * second``."""

    def __init__(self, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: Any) -> Any:
        first, second = inputs
        return (1.0 - self.weight) * first + self.weight * second

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


def fuse_networks(
    full: keras.Model, leading: keras.Model, *, columns: int, leading_weight: float = 0.5
) -> keras.Model:
    """One graph: ``full`` on every feature, ``leading`` on the first ``columns``, their
    probabilities averaged with ``leading_weight`` on the second. Both are used as they are
    (calibrated ones stay calibrated)."""
    if not 0.0 < leading_weight < 1.0:
        raise ValueError(f"leading_weight must lie strictly between 0 and 1, not {leading_weight}")
    dim = full.inputs[0].shape[1]
    if leading.inputs[0].shape[1] != columns or not 0 < columns < dim:
        raise ValueError(
            f"cannot fuse a {leading.inputs[0].shape[1]}-input network as the first "
            f"{columns} of {dim} features"
        )
    inputs = keras.Input(shape=(dim,), name="features", dtype="float32")
    # Renamed so the two nested networks (both "mlp") can sit in one graph.
    full = keras.Model(full.input, full.output, name="all_features")
    leading = keras.Model(leading.input, leading.output, name="leading_features")
    both = [full(inputs), leading(LeadingColumns(columns, name="leading_columns")(inputs))]
    fused = WeightedMean(leading_weight, name="fused")(both)
    return keras.Model(inputs, fused, name="fused")


def build_mlp(
    *,
    input_dim: int,
    n_labels: int,
    mean: np.ndarray,
    std: np.ndarray,
    config: TrainConfig,
    prefix: str = "",
) -> keras.Model:
    """The paper's MLP: Dense-Dropout blocks and a softmax, after in-graph standardisation.

    ``prefix`` names the layers apart, so that trained members can share one ensemble graph.
    """
    inputs = keras.Input(shape=(input_dim,), name="features", dtype="float32")
    x = Standardise(mean, std, name="standardise")(inputs)
    for i, units in enumerate(config.hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"{prefix}dense_{i}")(x)
        x = keras.layers.Dropout(config.dropout, name=f"{prefix}dropout_{i}")(x)
    outputs = keras.layers.Dense(n_labels, activation="softmax", name=f"{prefix}probabilities")(x)
    model = keras.Model(inputs, outputs, name=config.architecture)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def fit(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    n_labels: int,
    config: TrainConfig,
    verbose: int = 0,
) -> keras.Model:
    """Train from scratch and keep the weights of the best validation epoch.

    With ``config.ensemble > 1``, that many networks are trained from consecutive seeds and
    returned as one model that averages their probabilities.
    """
    if config.ensemble > 1:
        members = [
            _fit_one(
                x_fit,
                y_fit,
                x_val,
                y_val,
                n_labels=n_labels,
                config=replace(config, seed=config.seed + i),
                prefix=f"m{i}_",
                verbose=verbose,
            )
            for i in range(config.ensemble)
        ]
        return average_members(members, name=config.architecture)
    return _fit_one(x_fit, y_fit, x_val, y_val, n_labels=n_labels, config=config, verbose=verbose)


def average_members(members: list[keras.Model], *, name: str) -> keras.Model:
    """One graph: the shared standardisation, each member's layers, the mean probability.

    Every member was standardised with the same training statistics, so the first member's
    ``standardise`` layer serves all.
    """
    inputs = keras.Input(shape=members[0].inputs[0].shape[1:], name="features", dtype="float32")
    z = members[0].get_layer("standardise")(inputs)
    outputs = []
    for member in members:
        x = z
        for layer in member.layers:
            if not isinstance(layer, keras.layers.InputLayer | Standardise):
                x = layer(x)
        outputs.append(x)
    averaged = keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, averaged, name=name)


def _fit_one(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    n_labels: int,
    config: TrainConfig,
    prefix: str = "",
    verbose: int = 0,
) -> keras.Model:
    seed_everything(config.seed)
    mean = x_fit.mean(axis=0)
    std = np.maximum(x_fit.std(axis=0), 1e-6)
    model = build_mlp(
        input_dim=x_fit.shape[1],
        n_labels=n_labels,
        mean=mean,
        std=std,
        config=config,
        prefix=prefix,
    )
    weights = np.ones(n_labels)
    if config.class_weights:
        counts = np.bincount(y_fit, minlength=n_labels).astype(float)
        weights = counts.sum() / np.maximum(counts, 1) / n_labels
    best = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.epochs, restore_best_weights=True, verbose=0
    )
    targets = keras.utils.to_categorical(y_fit, n_labels)
    validation = (x_val, keras.utils.to_categorical(y_val, n_labels))
    if config.mixup > 0:
        batches = mixup_batches(
            x_fit,
            targets,
            weights[y_fit],
            alpha=config.mixup,
            batch_size=config.batch_size,
            seed=config.seed,
        )
        model.fit(
            batches,
            validation_data=validation,
            epochs=config.epochs,
            shuffle=False,  # the dataset reshuffles itself every epoch
            callbacks=[best],
            verbose=verbose,
        )
        return model
    model.fit(
        x_fit,
        targets,
        validation_data=validation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        class_weight={i: float(w) for i, w in enumerate(weights)} if config.class_weights else None,
        shuffle=True,
        callbacks=[best],
        verbose=verbose,
    )
    return model


def mixup_batches(
    x: np.ndarray,
    targets: np.ndarray,
    sample_weights: np.ndarray,
    *,
    alpha: float,
    batch_size: int,
    seed: int,
) -> Any:
    """Shuffled batches, each blended with a permutation of itself (Zhang et al., 2018).

    Parameters
    ----------
    x : np.ndarray, shape (n_clips, n_features)
    targets : np.ndarray, shape (n_clips, n_labels)
        One-hot labels; they are blended with the features, so a batch's targets are soft.
    sample_weights : np.ndarray, shape (n_clips,)
        Class weights per clip, blended alike (Keras's ``class_weight`` reads hard labels).
    alpha : float
        The Beta distribution's parameter for the blend ratio; small values keep most pairs
        close to one of the two clips.

    Returns
    -------
    tf.data.Dataset
        ``(features, targets, sample_weights)`` batches, reshuffled and re-blended every epoch
        from ``seed``.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be positive, got {alpha}")
    import tensorflow as tf

    def blend(xb: Any, yb: Any, wb: Any) -> tuple[Any, Any, Any]:
        n = tf.shape(xb)[0]
        a = tf.random.gamma([n, 1], alpha, seed=seed)
        b = tf.random.gamma([n, 1], alpha, seed=seed + 1)
        ratio = a / (a + b)
        order = tf.random.shuffle(tf.range(n), seed=seed + 2)
        mixed_x = ratio * xb + (1 - ratio) * tf.gather(xb, order)
        mixed_y = ratio * yb + (1 - ratio) * tf.gather(yb, order)
        mixed_w = ratio[:, 0] * wb + (1 - ratio[:, 0]) * tf.gather(wb, order)
        return mixed_x, mixed_y, mixed_w

    data = tf.data.Dataset.from_tensor_slices(
        (x.astype(np.float32), targets.astype(np.float32), sample_weights.astype(np.float32))
    )
    return (
        data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size).map(blend)
    )


def predict_proba(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x.astype(np.float32), training=False))
