"""LSTM-FCN models (Karim et al. 2017) in Keras 3: one readable builder, no globals.

Two input layouts are supported because the seed post and the paper's code differ:

- ``layout="paper"`` (default): the LSTM reads the *dimension-shuffled* series, one time
  step of ``L`` features (per channel), and the convolutions read ``L`` steps of ``C``
  channels. This is ``generate_lstmfcn`` in titu1994/LSTM-FCN.
- ``layout="seed"``: the post's reverse: the LSTM reads ``L`` steps and the convolutions
  read a length-``C`` sequence with ``L`` channels (many more parameters, slower LSTM).

``attention=True`` swaps the LSTM for :class:`AttentionLSTM` (the ALSTM-FCN). The output
layer is always float32 so that mixed precision keeps a stable loss.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from guitarlab.errors import TrainError

LAYOUTS = ("paper", "seed")
OUTPUT_LAYER = "output"


@keras.saving.register_keras_serializable(package="guitarlab")
class AttentionLSTM(layers.Layer):
    """An LSTM whose every step also sees an attention-weighted summary of the whole input.

    At step ``t`` the previous hidden state ``h`` scores every input step ``x_j`` with
    ``v . tanh(W_a x_j + U_a h + b_a)``; the softmax of the scores weights a context vector
    ``sum_j alpha_j x_j`` that enters the gates beside ``x_t`` (Bahdanau-style attention,
    as in the ALSTM-FCN of Karim et al.). Returns the last hidden state, ``(batch, units)``.

    Parameters: ``4u(2C + u + 1)`` for the gates plus ``Cu + u^2 + 2u`` for the attention,
    with ``C`` input features and ``u`` units.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        features, units = int(input_shape[-1]), self.units
        glorot, orth = "glorot_uniform", "orthogonal"
        self.kernel = self.add_weight(
            shape=(features, 4 * units), initializer=glorot, name="kernel"
        )
        self.context_kernel = self.add_weight(
            shape=(features, 4 * units), initializer=glorot, name="context_kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(units, 4 * units), initializer=orth, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(4 * units,), initializer="zeros", name="bias")
        self.attention_kernel = self.add_weight(
            shape=(features, units), initializer=glorot, name="attention_kernel"
        )
        self.attention_recurrent = self.add_weight(
            shape=(units, units), initializer=orth, name="attention_recurrent"
        )
        self.attention_bias = self.add_weight(
            shape=(units,), initializer="zeros", name="attention_bias"
        )
        self.attention_score = self.add_weight(
            shape=(units, 1), initializer=glorot, name="attention_score"
        )

    def call(self, inputs):
        projected = ops.matmul(inputs, self.attention_kernel) + self.attention_bias  # (B, T, u)
        batch = ops.shape(inputs)[0]
        zeros = ops.zeros((batch, self.units), dtype=inputs.dtype)

        def step(carry, x_t):
            h, c = carry
            scores = ops.matmul(
                ops.tanh(projected + ops.expand_dims(ops.matmul(h, self.attention_recurrent), 1)),
                self.attention_score,
            )  # (B, T, 1)
            # softmax over the steps, written out (ops.softmax warns on a 1-step axis)
            weights = ops.exp(scores - ops.max(scores, axis=1, keepdims=True))
            alpha = weights / ops.sum(weights, axis=1, keepdims=True)
            context = ops.sum(alpha * inputs, axis=1)  # (B, C)
            z = (
                ops.matmul(x_t, self.kernel)
                + ops.matmul(context, self.context_kernel)
                + ops.matmul(h, self.recurrent_kernel)
                + self.bias
            )
            i, f, g, o = ops.split(z, 4, axis=-1)
            c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            h = ops.sigmoid(o) * ops.tanh(c)
            return (h, c), None

        (h, _), _ = ops.scan(step, (zeros, zeros), ops.transpose(inputs, (1, 0, 2)))
        return h

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _conv_block(x, filters: int, kernel_size: int, *, dtype=None):
    """Conv1D ('same', he_uniform) -> BatchNorm -> ReLU, the FCN's repeated unit."""
    x = layers.Conv1D(
        filters, kernel_size, padding="same", kernel_initializer="he_uniform", dtype=dtype
    )(x)
    x = layers.BatchNormalization(dtype=dtype)(x)
    return layers.Activation("relu", dtype=dtype)(x)


def lstm_fcn(
    window_length: int,
    n_classes: int,
    *,
    channels: int = 1,
    lstm_cells: int = 8,
    dropout: float = 0.8,
    filters: tuple[int, ...] = (128, 256, 128),
    kernels: tuple[int, ...] = (8, 5, 3),
    layout: str = "paper",
    attention: bool = False,
    dtype_policy: str | None = None,
) -> keras.Model:
    """Build an LSTM-FCN (or ALSTM-FCN) for windows of shape ``(window_length, channels)``.

    Parameters
    ----------
    window_length, channels
        Input shape ``(L, C)``; univariate audio has ``C = 1``.
    n_classes
        2 gives one sigmoid unit (probability of class 1, as in the seed); more gives softmax.
    lstm_cells, dropout
        LSTM branch: cells (8/64/128 in the paper) and the dropout after it.
    filters, kernels
        FCN branch: one ``_conv_block`` per pair. ``(8, 16, 8)`` makes a CPU-sized model.
    layout
        ``"paper"`` (LSTM reads the dimension-shuffled series) or ``"seed"`` (the reverse).
    attention
        Use :class:`AttentionLSTM` (ALSTM-FCN) instead of a plain (cuDNN-capable) LSTM.
    dtype_policy
        e.g. ``"mixed_float16"`` for every layer but the output, which stays float32.

    Examples
    --------
    >>> model = lstm_fcn(8000, 2, filters=(8, 16, 8))
    >>> model.output_shape
    (None, 1)
    """
    if layout not in LAYOUTS:
        raise TrainError(f"layout {layout!r} is unknown; use one of: {', '.join(LAYOUTS)}")
    if n_classes < 2:
        raise TrainError(f"n_classes={n_classes}: a classifier needs at least 2 classes")
    if len(filters) != len(kernels) or not filters:
        raise TrainError(
            f"filters {tuple(filters)} and kernels {tuple(kernels)} must be non-empty and the same length"
        )
    if window_length < 1 or channels < 1:
        raise TrainError(f"input shape ({window_length}, {channels}) must be positive")

    inputs = keras.Input(shape=(window_length, channels), name="window")
    shuffled = layers.Permute((2, 1), name="dimension_shuffle", dtype=dtype_policy)(inputs)
    lstm_input, conv_input = (shuffled, inputs) if layout == "paper" else (inputs, shuffled)

    if attention:
        x = AttentionLSTM(lstm_cells, name="attention_lstm", dtype=dtype_policy)(lstm_input)
    else:
        x = layers.LSTM(lstm_cells, name="lstm", dtype=dtype_policy)(lstm_input)
    x = layers.Dropout(dropout, dtype=dtype_policy)(x)

    y = conv_input
    for n_filters, kernel_size in zip(filters, kernels, strict=True):
        y = _conv_block(y, int(n_filters), int(kernel_size), dtype=dtype_policy)
    y = layers.GlobalAveragePooling1D(dtype=dtype_policy)(y)

    z = layers.Concatenate(dtype=dtype_policy)([x, y])
    if n_classes == 2:
        outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER, dtype="float32")(z)
    else:
        outputs = layers.Dense(n_classes, activation="softmax", name=OUTPUT_LAYER, dtype="float32")(
            z
        )
    name = ("alstm_fcn" if attention else "lstm_fcn") + f"_{layout}"
    return keras.Model(inputs, outputs, name=name)


def probabilities(outputs, n_classes: int):
    """Model outputs ``(N, 1)`` or ``(N, K)`` as class probabilities ``(N, n_classes)``."""
    import numpy as np

    outputs = np.asarray(outputs, dtype=np.float64)
    if n_classes == 2 and outputs.shape[-1] == 1:
        p1 = outputs[:, 0]
        return np.stack([1.0 - p1, p1], axis=1)
    return outputs


def widen_output(model: keras.Model, n_classes: int) -> keras.Model:
    """A model with the same body and a softmax output over ``n_classes``, old weights kept.

    Use it to fine-tune a run on a corpus that gained guitars. The old classes keep their
    indices (new label names must be appended after the old ones).

    - sigmoid ``Dense(1)`` with weights ``w, b`` -> softmax logits ``-z/2`` for class 0 and
      ``+z/2`` for class 1 (``z = w.x + b``): ``softmax([-z/2, z/2])[1] == sigmoid(z)``, so
      the widened model gives exactly the old probabilities between the old two classes.
    - softmax ``Dense(K)`` -> the ``K`` old columns are copied.
    - new classes start with zero weights and the smallest old bias, so they begin
      plausible but not preferred, and training moves them.
    """
    import numpy as np

    old = model.get_layer(OUTPUT_LAYER)
    kernel, bias = (np.asarray(v) for v in old.get_weights())
    old_classes = 2 if kernel.shape[1] == 1 else kernel.shape[1]
    if n_classes < old_classes:
        raise TrainError(
            f"cannot widen a {old_classes}-class model to {n_classes} classes; give at least {old_classes}"
        )
    if kernel.shape[1] == 1:
        kernel = np.concatenate([-kernel / 2, kernel / 2], axis=1)
        bias = np.concatenate([-bias / 2, bias / 2])
    new_kernel = np.zeros((kernel.shape[0], n_classes), dtype=np.float32)
    new_bias = np.full((n_classes,), float(bias.min()), dtype=np.float32)
    new_kernel[:, :old_classes] = kernel
    new_bias[:old_classes] = bias
    head = layers.Dense(n_classes, activation="softmax", name=OUTPUT_LAYER, dtype="float32")
    outputs = head(old.input)
    head.set_weights([new_kernel, new_bias])
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=model.name)


def count_lstm_fcn_params(
    window_length: int,
    n_classes: int,
    *,
    channels: int = 1,
    lstm_cells: int = 8,
    filters: tuple[int, ...] = (128, 256, 128),
    kernels: tuple[int, ...] = (8, 5, 3),
    layout: str = "paper",
    attention: bool = False,
) -> int:
    """The parameter count of :func:`lstm_fcn`, by hand (documents what the model holds).

    Conv1D: ``k * c_in * f + f``; BatchNorm: ``4 f`` (2 trainable); LSTM: ``4u(d + u + 1)``;
    output: ``(u + f_last + 1) * units_out``.
    """
    lstm_features = window_length if layout == "paper" else channels
    conv_channels = channels if layout == "paper" else window_length
    u = lstm_cells
    if attention:
        d = lstm_features
        total = 4 * u * (2 * d + u + 1) + d * u + u * u + 2 * u
    else:
        total = 4 * u * (lstm_features + u + 1)
    c_in = conv_channels
    for f, k in zip(filters, kernels, strict=True):
        total += k * c_in * f + f + 4 * f
        c_in = f
    out_units = 1 if n_classes == 2 else n_classes
    return total + (u + c_in + 1) * out_units
