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
from trainer.corpus_mix import FitArguments, balance_weights, combine_weights  # noqa: E402


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


@keras.saving.register_keras_serializable(package="ser")
class MaskedCrossentropy(keras.losses.Loss):
    """Cross-entropy over the labels each clip's corpus has.

    A clip scores ``-log(p_true / sum_{l allowed} p_l)``: the probabilities renormalised
    over its corpus's labels, so the logits of the labels its corpus lacks get no gradient
    (a TurEV-DB clip is never pushed away from surprise). With every label allowed this is
    the ordinary categorical cross-entropy.

    ``y_true`` carries the mask with the targets, as :func:`masked_targets` builds it:
    ``[targets | mask_a | mask_b | ratio]``, shape ``(batch, 3 * n_labels + 1)``. A clip
    scores ``ratio * loss(mask_a) + (1 - ratio) * loss(mask_b)`` with the targets split
    alike: a mixup blend of two clips (ratio in (0, 1)) is scored as mixup scores them, each
    part over its own corpus's labels; an unblended clip has ``mask_a = mask_b``,
    ``ratio = 1``. Label smoothing spreads over the allowed labels only.
    """

    def __init__(
        self,
        n_labels: int,
        label_smoothing: float = 0.0,
        name: str = "masked_crossentropy",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.n_labels = int(n_labels)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops, n = keras.ops, self.n_labels
        targets, mask_a, mask_b = y_true[:, :n], y_true[:, n : 2 * n], y_true[:, 2 * n : 3 * n]
        ratio = y_true[:, 3 * n]
        probs = ops.clip(y_pred, keras.config.epsilon(), 1.0)
        if self.label_smoothing:
            spread = ratio[:, None] * mask_a / ops.sum(mask_a, axis=-1, keepdims=True) + (
                1.0 - ratio[:, None]
            ) * mask_b / ops.sum(mask_b, axis=-1, keepdims=True)
            targets = (1.0 - self.label_smoothing) * targets + self.label_smoothing * spread
        # -sum_k t_k log p_k + sum_k t_k log S: the targets of each part sum to its ratio.
        return (
            -ops.sum(targets * ops.log(probs), axis=-1)
            + ratio * ops.log(ops.sum(mask_a * probs, axis=-1))
            + (1.0 - ratio) * ops.log(ops.sum(mask_b * probs, axis=-1))
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_labels": self.n_labels,
            "label_smoothing": self.label_smoothing,
        }


def masked_targets(targets: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Targets with each clip's label mask, as :class:`MaskedCrossentropy` reads them.

    Parameters
    ----------
    targets : np.ndarray, shape (n_clips, n_labels)
        One-hot labels.
    masks : np.ndarray, shape (n_clips, n_labels)
        1 where the clip's corpus has the label.

    Returns
    -------
    np.ndarray, shape (n_clips, 3 * n_labels + 1), float32
        ``[targets | masks | masks | 1]``.
    """
    if masks.shape != targets.shape:
        raise ValueError(f"masks of shape {masks.shape} for targets of shape {targets.shape}")
    if (targets * (1 - masks)).any():
        raise ValueError("a clip's label is outside its corpus's labels")
    ones = np.ones((len(targets), 1))
    return np.concatenate([targets, masks, masks, ones], axis=1).astype(np.float32)


def _masked_accuracy(y_true: Any, y_pred: Any) -> Any:
    n = y_pred.shape[-1]
    hits = keras.ops.argmax(y_true[:, :n], axis=-1) == keras.ops.argmax(y_pred, axis=-1)
    return keras.ops.cast(hits, "float32")


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
    if config.mask_absent_labels:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
            loss=MaskedCrossentropy(n_labels, label_smoothing=config.label_smoothing),
            metrics=[keras.metrics.MeanMetricWrapper(_masked_accuracy, name="accuracy")],
        )
        return model
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
    fit_masks: np.ndarray | None = None,
    val_masks: np.ndarray | None = None,
    fit_groups: np.ndarray | None = None,
) -> keras.Model:
    """Train from scratch and keep the weights of the best validation epoch.

    With ``config.ensemble > 1``, that many networks are trained from consecutive seeds and
    returned as one model that averages their probabilities.

    Parameters
    ----------
    x_fit, y_fit, x_val, y_val : np.ndarray
        Features ``(n, n_features)`` and label indices ``(n,)``.
    fit_masks, val_masks : np.ndarray, shape (n, n_labels), optional
        The labels each clip's corpus has (``trainer.corpus_mix.label_masks``); needed with
        ``config.mask_absent_labels``.
    fit_groups : np.ndarray, shape (n_fit,), optional
        Each training clip's speaker or corpus, to balance; needed with ``config.balance``.
    """
    if config.mask_absent_labels and (fit_masks is None or val_masks is None):
        raise ValueError("mask_absent_labels needs each clip's label mask (fit_masks, val_masks)")
    if config.balance != "none" and fit_groups is None:
        raise ValueError(f"balance={config.balance!r} needs each clip's group (fit_groups)")
    pooled = FitArguments(fit_masks=fit_masks, val_masks=val_masks, fit_groups=fit_groups)
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
                **pooled,
            )
            for i in range(config.ensemble)
        ]
        return average_members(members, name=config.architecture)
    return _fit_one(
        x_fit, y_fit, x_val, y_val, n_labels=n_labels, config=config, verbose=verbose, **pooled
    )


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
    fit_masks: np.ndarray | None = None,
    val_masks: np.ndarray | None = None,
    fit_groups: np.ndarray | None = None,
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
    masks = fit_masks if config.mask_absent_labels else None
    if masks is not None and val_masks is not None:
        validation = (x_val, masked_targets(validation[1], val_masks))
    clip_weights = weights[y_fit]
    if config.balance != "none" and fit_groups is not None:
        clip_weights = combine_weights(clip_weights, balance_weights(fit_groups))
    if config.mixup > 0:
        batches = mixup_batches(
            x_fit,
            targets,
            clip_weights,
            alpha=config.mixup,
            batch_size=config.batch_size,
            seed=config.seed,
            masks=masks,
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
    if masks is not None or config.balance != "none":
        # Explicit per-clip weights: Keras's class_weight would read labels from targets
        # that carry masks too.
        model.fit(
            x_fit,
            targets if masks is None else masked_targets(targets, masks),
            sample_weight=clip_weights,
            validation_data=validation,
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
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
    masks: np.ndarray | None = None,
) -> Any:
    """Shuffled batches, each blended with a permutation of itself (Zhang et al., 2018).

    Parameters
    ----------
    x : np.ndarray, shape (n_clips, n_features)
    targets : np.ndarray, shape (n_clips, n_labels)
        One-hot labels; they are blended with the features, so a batch's targets are soft.
    sample_weights : np.ndarray, shape (n_clips,)
        Class weights (times balance weights) per clip, blended alike (Keras's
        ``class_weight`` reads hard labels).
    alpha : float
        The Beta distribution's parameter for the blend ratio; small values keep most pairs
        close to one of the two clips.
    masks : np.ndarray, shape (n_clips, n_labels), optional
        The labels each clip's corpus has. The masks are not blended: each blend's targets
        carry both clips' masks and the ratio (``[blended targets | mask | partner's mask |
        ratio]``, see :class:`MaskedCrossentropy`), so each part is scored over its own
        corpus's labels.

    Returns
    -------
    tf.data.Dataset
        ``(features, targets, sample_weights)`` batches, reshuffled and re-blended every epoch
        from ``seed``.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be positive, got {alpha}")
    import tensorflow as tf

    n_labels = targets.shape[1]

    def blend(xb: Any, yb: Any, wb: Any) -> tuple[Any, Any, Any]:
        n = tf.shape(xb)[0]
        a = tf.random.gamma([n, 1], alpha, seed=seed)
        b = tf.random.gamma([n, 1], alpha, seed=seed + 1)
        ratio = a / (a + b)
        order = tf.random.shuffle(tf.range(n), seed=seed + 2)
        mixed_x = ratio * xb + (1 - ratio) * tf.gather(xb, order)
        mixed_w = ratio[:, 0] * wb + (1 - ratio[:, 0]) * tf.gather(wb, order)
        if masks is None:
            mixed_y = ratio * yb + (1 - ratio) * tf.gather(yb, order)
            return mixed_x, mixed_y, mixed_w
        onehot, mask = yb[:, :n_labels], yb[:, n_labels:]
        mixed = ratio * onehot + (1 - ratio) * tf.gather(onehot, order)
        return mixed_x, tf.concat([mixed, mask, tf.gather(mask, order), ratio], 1), mixed_w

    if masks is not None:
        # Checked as for unblended clips; the blend's own layout is built in ``blend``.
        masked_targets(targets, masks)
        targets = np.concatenate([targets, masks], axis=1)
    data = tf.data.Dataset.from_tensor_slices(
        (x.astype(np.float32), targets.astype(np.float32), sample_weights.astype(np.float32))
    )
    return (
        data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size).map(blend)
    )


def predict_proba(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x.astype(np.float32), training=False))
