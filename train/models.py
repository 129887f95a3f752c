"""LSTM-FCN models (Karim et al. 2017) in Keras 3: one readable builder, no globals.

Two input layouts are supported because the 2019 post and the paper's code differ:

- ``layout="paper"`` (default): the LSTM reads the *dimension-shuffled* series, one time
  step of ``L`` features (per channel), and the convolutions read ``L`` steps of ``C``
  channels. This is ``generate_lstmfcn`` in titu1994/LSTM-FCN.
- ``layout="post"``: the post's reverse: the LSTM reads ``L`` steps and the convolutions
  read a length-``C`` sequence with ``L`` channels (many more parameters, slower LSTM).

``attention=True`` swaps the LSTM for :class:`AttentionLSTM` (the ALSTM-FCN). The output
layer is always float32 so that mixed precision keeps a stable loss.
"""

from __future__ import annotations

import weakref

from guitarlab.corpus.defaults import post_alias
from guitarlab.corpus.errors import TrainError
from guitarlab.train.config import LAYOUTS, MEL_NORMS
from guitarlab.train.startup import import_tensorflow

import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

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


def _check_shape(window_length, channels, n_classes, filters, kernels) -> None:
    if n_classes < 2:
        raise TrainError(f"n_classes={n_classes}: a classifier needs at least 2 classes")
    if len(filters) != len(kernels) or not filters:
        raise TrainError(
            f"filters {tuple(filters)} and kernels {tuple(kernels)} must be non-empty and the same length"
        )
    if window_length < 1 or channels < 1:
        raise TrainError(f"input shape ({window_length}, {channels}) must be positive")


def _output_layer(z, n_classes: int):
    """One sigmoid unit for two classes (the post), softmax for more; float32 always."""
    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER, dtype="float32")(z)
    return layers.Dense(n_classes, activation="softmax", name=OUTPUT_LAYER, dtype="float32")(z)


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
        2 gives one sigmoid unit (probability of class 1, as in the post); more gives softmax.
    lstm_cells, dropout
        LSTM branch: cells (8/64/128 in the paper) and the dropout after it.
    filters, kernels
        FCN branch: one ``_conv_block`` per pair. ``(8, 16, 8)`` makes a CPU-sized model.
    layout
        ``"paper"`` (LSTM reads the dimension-shuffled series) or ``"post"`` (the reverse; ``"seed"``, its old name, too).
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
    layout = post_alias(layout)
    if layout not in LAYOUTS:
        raise TrainError(f"layout {layout!r} is unknown; use one of: {', '.join(LAYOUTS)}")
    _check_shape(window_length, channels, n_classes, filters, kernels)

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
    outputs = _output_layer(z, n_classes)
    name = ("alstm_fcn" if attention else "lstm_fcn") + f"_{layout}"
    return keras.Model(inputs, outputs, name=name)


# ----------------------------------------------------------------------------- spectrogram branch


@keras.saving.register_keras_serializable(package="guitarlab")
class LogMelFrames(layers.Layer):
    """Windows ``(B, L, C)`` -> normalized log-mel frames ``(B, T, n_mels)``.

    A Hann-windowed STFT (``tf.signal.stft``, no padding), power summed into HTK mel bands
    (``tf.signal.linear_to_mel_weight_matrix``), in dB, then normalized by ``norm``:

    - ``"loudness"``: minus the window's mean dB. A gain change (pick harder, turn the
      volume up) shifts every cell equally, so this removes loudness and keeps the whole
      spectral shape: the pickup's, and also the cable's, the knobs' and the room's.
    - ``"band"``: each band minus its own mean over the window's frames (cepstral mean
      normalization). Any fixed linear filter (the cable against the coil's resonance,
      a rolled-off tone knob, the interface's EQ) adds a constant per band in dB, so this
      removes every such filter along with loudness. What stays is how the spectrum moves
      as notes change: a pickup's sensing window acts per string and per fret, so it
      survives. Made for telling pickup types apart on guitars never heard (MODEL.md).

    Inside the model, so training, evaluation and predict share one preprocessing and it
    runs on the GPU. Always computed in float32 (``log`` of float16 power underflows).
    Channels are averaged first. ``T = 1 + (L - frame_length) // hop_length``.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        frame_length: int = 1024,
        hop_length: int = 256,
        n_mels: int = 64,
        fmin_hz: float = 40.0,
        fmax_hz: float | None = None,
        norm: str = "loudness",
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if norm not in MEL_NORMS:
            raise TrainError(f"mel norm {norm!r} is unknown; use one of: {', '.join(MEL_NORMS)}")
        self.norm = norm
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin_hz = float(fmin_hz)
        self.fmax_hz = float(fmax_hz) if fmax_hz else self.sample_rate / 2.0

    def mel_matrix(self):
        """``(frame_length // 2 + 1, n_mels)`` weights from FFT bins to mel bands."""
        import tensorflow as tf

        return tf.signal.linear_to_mel_weight_matrix(
            num_mel_bins=self.n_mels,
            num_spectrogram_bins=self.frame_length // 2 + 1,
            sample_rate=self.sample_rate,
            lower_edge_hertz=self.fmin_hz,
            upper_edge_hertz=self.fmax_hz,
        )

    def call(self, inputs):
        import tensorflow as tf

        signal = tf.reduce_mean(tf.cast(inputs, tf.float32), axis=-1)
        stft = tf.signal.stft(
            signal,
            frame_length=self.frame_length,
            frame_step=self.hop_length,
            fft_length=self.frame_length,
            window_fn=tf.signal.hann_window,
            pad_end=False,
        )
        power = tf.math.square(tf.math.abs(stft))
        mel = tf.tensordot(power, self.mel_matrix(), axes=1)
        db = 10.0 * tf.math.log(mel + 1e-10) / tf.math.log(10.0)
        over = [1, 2] if self.norm == "loudness" else [1]  # the window, or each band in time
        return db - tf.reduce_mean(db, axis=over, keepdims=True)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        frames = None if length is None else 1 + (length - self.frame_length) // self.hop_length
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return {
            **config,
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "hop_length": self.hop_length,
            "n_mels": self.n_mels,
            "fmin_hz": self.fmin_hz,
            "fmax_hz": self.fmax_hz,
            "norm": self.norm,
        }


@keras.saving.register_keras_serializable(package="guitarlab")
class SpectralStats(layers.Layer):
    """Loudness-normalized log-mel frames ``(B, T, F)`` -> ``(B, F (F - 1) / 2 + F)``: how the
    mel bands move together over the window, then the window's mean spectrum.

    - The correlation over the frames of every pair of bands: which bands rise and fall
      together as the notes change string and fret. A pickup weights each string's partials
      by where and how wide it senses the string (a humbucker's two coils 18 mm apart null
      one region per string), so the co-movement carries the pickup type; a correlation
      ignores each band's offset and scale, so no fixed filter (cable, knobs, the rig's
      EQ) and no gain can move it.
    - The mean over the frames: the long-term spectrum, what the logistic baseline reads.

    Second-order pooling, as in bilinear and covariance-pooling networks; measured in
    MODEL.md ("Guitars never heard"). Always float32, like :class:`LogMelFrames`.
    """

    def __init__(self, *, epsilon_db: float = 1e-3, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.epsilon_db = float(epsilon_db)

    def call(self, frames):
        import tensorflow as tf

        frames = tf.cast(frames, tf.float32)
        envelope = tf.reduce_mean(frames, axis=1)  # (B, F)
        moving = frames - envelope[:, None, :]
        z = moving / (tf.math.reduce_std(moving, axis=1, keepdims=True) + self.epsilon_db)
        corr = tf.einsum("btf,btg->bfg", z, z) / tf.cast(tf.shape(z)[1], tf.float32)
        bands = int(frames.shape[-1])
        rows, cols = np.triu_indices(bands, 1)
        pairs = tf.gather(tf.reshape(corr, (-1, bands * bands)), rows * bands + cols, axis=1)
        return tf.concat([pairs, envelope], axis=1)

    def compute_output_shape(self, input_shape):
        bands = input_shape[-1]
        return (input_shape[0], bands * (bands - 1) // 2 + bands)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return {**config, "epsilon_db": self.epsilon_db}


def _squeeze_excite(x, *, ratio: int = 16, dtype=None):
    """Channel attention of MLSTM-FCN: global average -> bottleneck -> sigmoid gate per filter."""
    filters = int(x.shape[-1])
    s = layers.GlobalAveragePooling1D(keepdims=True, dtype=dtype)(x)
    s = layers.Dense(max(4, filters // ratio), activation="relu", dtype=dtype)(s)
    s = layers.Dense(filters, activation="sigmoid", dtype=dtype)(s)
    return layers.Multiply(dtype=dtype)([x, s])


def spectrogram_lstm_fcn(
    window_length: int,
    n_classes: int,
    *,
    sample_rate: int,
    channels: int = 1,
    frame_length: int = 1024,
    hop_length: int = 256,
    n_mels: int = 64,
    mel_norm: str = "loudness",
    spectral_stats: bool = False,
    stats_dropout: float = 0.5,
    lstm_cells: int = 8,
    dropout: float = 0.8,
    filters: tuple[int, ...] = (128, 256, 128),
    kernels: tuple[int, ...] = (8, 5, 3),
    dtype_policy: str | None = None,
) -> keras.Model:
    """An MLSTM-FCN (Karim et al. 2019) over log-mel frames computed inside the model.

    The window becomes ``T`` frames of ``n_mels`` normalized log-mel values
    (:class:`LogMelFrames`, ``mel_norm``), read as a multivariate series: the LSTM runs over the frames
    (time steps), the FCN blocks convolve along time with the mel bands as channels and a
    squeeze-and-excite gate after each block but the last. Input and output are those of
    :func:`lstm_fcn`, so datasets, evaluation and predict need nothing else.

    ``spectral_stats`` adds a third branch beside the LSTM and the FCN: the band
    correlations and mean spectrum of :class:`SpectralStats` (from loudness-normalized
    frames; one STFT serves both), standardized by a BatchNormalization and dropped out
    at ``stats_dropout`` before the output layer.

    Examples
    --------
    >>> model = spectrogram_lstm_fcn(8000, 2, sample_rate=44100, filters=(8, 16, 8))
    >>> model.get_layer("log_mel").compute_output_shape((None, 8000, 1))
    (None, 28, 64)
    """
    _check_shape(window_length, channels, n_classes, filters, kernels)
    if window_length < frame_length:
        raise TrainError(
            f"window {window_length} is shorter than one spectrogram frame ({frame_length} samples); "
            "use longer windows or a smaller frame"
        )
    inputs = keras.Input(shape=(window_length, channels), name="window")
    frames = LogMelFrames(
        sample_rate,
        frame_length=frame_length,
        hop_length=hop_length,
        n_mels=n_mels,
        norm="loudness" if spectral_stats else mel_norm,
        name="log_mel",
    )(inputs)
    branches = []
    if spectral_stats:
        s = SpectralStats(name="spectral_stats")(frames)
        s = layers.BatchNormalization(name="stats_norm", dtype=dtype_policy)(s)
        branches.append(layers.Dropout(stats_dropout, dtype=dtype_policy)(s))
        if mel_norm == "band":  # each band minus its mean over the window: LogMelFrames' "band"
            band_means = layers.GlobalAveragePooling1D(keepdims=True, dtype="float32")(frames)
            frames = layers.Subtract(name="band_norm", dtype="float32")([frames, band_means])
    x = layers.LSTM(lstm_cells, name="lstm", dtype=dtype_policy)(frames)
    x = layers.Dropout(dropout, dtype=dtype_policy)(x)

    y = frames
    for index, (n_filters, kernel_size) in enumerate(zip(filters, kernels, strict=True)):
        y = _conv_block(y, int(n_filters), int(kernel_size), dtype=dtype_policy)
        if index < len(filters) - 1:
            y = _squeeze_excite(y, dtype=dtype_policy)
    y = layers.GlobalAveragePooling1D(dtype=dtype_policy)(y)

    z = layers.Concatenate(dtype=dtype_policy)([x, y, *branches])
    outputs = _output_layer(z, n_classes)
    return keras.Model(inputs, outputs, name="mlstm_fcn_spectrogram")


def ensemble(members: list[keras.Model], *, name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of its members' probabilities (same input, output).

    Trained end to end (the loss sees the averaged probability), saved and loaded as one
    ``.keras`` file, so evaluate and predict treat it like any other model.
    """
    if len(members) < 2:
        raise TrainError("an ensemble needs at least two models")
    shapes = {tuple(m.input_shape[1:]) for m in members}
    outputs = {tuple(m.output_shape[1:]) for m in members}
    if len(shapes) != 1 or len(outputs) != 1:
        raise TrainError(
            f"ensemble members disagree on input {sorted(shapes)} or output {sorted(outputs)}"
        )
    inputs = keras.Input(shape=members[0].input_shape[1:], name="window")
    averaged = layers.Average(name=OUTPUT_LAYER, dtype="float32")([m(inputs) for m in members])
    return keras.Model(inputs, averaged, name=name)


def probabilities(outputs, n_classes: int):
    """Model outputs ``(N, 1)`` or ``(N, K)`` as class probabilities ``(N, n_classes)``."""
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
    old = model.get_layer(OUTPUT_LAYER)
    if not isinstance(old, layers.Dense):
        raise TrainError(
            f"{model.name}: its output averages member models, so it cannot be widened; "
            "train a new ensemble on the grown dataset instead"
        )
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


CALIBRATION_BYTES = 64 * 2**20  # float32 bytes of the widest activation in one calibration batch
_SQUARE_CHUNK = 2**16  # values squared in float64 at a time (512 KiB)
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _functional_parts(model: keras.Model) -> list[keras.Model]:
    """The model itself, or the member models of an :func:`ensemble`."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return members or [model]


def _widest_elements(extractor: keras.Model, window_length: int) -> int:
    """Values per window in the largest tensor the extractor computes (unknown sizes count
    as the window length): what one window costs in a calibration batch."""
    widest = int(window_length)
    for layer in extractor.layers:
        try:
            outputs = keras.tree.flatten(layer.output)
        except (AttributeError, ValueError):  # a layer used twice has no single output
            continue
        for tensor in outputs:
            dims = [window_length if d is None else int(d) for d in tuple(tensor.shape)[1:]]
            widest = max(widest, int(np.prod(dims)) if dims else 1)
    return widest


def batch_norm_plan(part: keras.Model) -> list[tuple[keras.Model, list, int]]:
    """The passes :func:`recalibrate_batch_norm` makes over one functional model, built once
    per model (cached): ``(extractor, norms, widest)`` per pass, in order.

    A pass takes every BatchNormalization whose input depends on no BatchNorm not yet set:
    its extractor outputs all their inputs at once. A later pass must wait for the earlier
    ones, because in inference mode a block's input depends on the statistics of the
    blocks before it (through the ReLU): one pass over all layers could not give each
    layer the exact statistics of what it sees at inference.
    """
    cached = _PLANS.get(part)
    if cached is not None:
        return cached
    norms = [layer for layer in part.layers if isinstance(layer, layers.BatchNormalization)]
    depth: dict[int, int] = {}
    for norm in norms:  # part.layers is in topological order
        upstream = keras.Model(part.inputs[0], norm.input).layers
        above = [depth[id(u)] for u in upstream if id(u) in depth]
        depth[id(norm)] = 1 + max(above) if above else 0
    plan = []
    window_length = int(part.inputs[0].shape[1] or 1)
    for level in sorted(set(depth.values())):
        group = [norm for norm in norms if depth[id(norm)] == level]
        extractor = keras.Model(part.inputs[0], [norm.input for norm in group])
        plan.append((extractor, group, _widest_elements(extractor, window_length)))
    _PLANS[part] = plan
    return plan


def _channel_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel float64 sums of ``x`` and ``x**2`` over every axis but the last, and the
    count: only ``_SQUARE_CHUNK`` values are ever copied to float64 at a time."""
    flat = values.reshape(-1, values.shape[-1])
    total = flat.sum(axis=0, dtype=np.float64)  # numpy casts through a small buffer
    squares = np.zeros(flat.shape[1], dtype=np.float64)
    rows = max(1, _SQUARE_CHUNK // flat.shape[1])
    for start in range(0, len(flat), rows):
        chunk = flat[start : start + rows].astype(np.float64)
        squares += np.einsum("ij,ij->j", chunk, chunk)
    return total, squares, len(flat)


def recalibrate_batch_norm(
    model: keras.Model,
    windows,
    *,
    batch_size: int = 256,
    memory_bytes: int = CALIBRATION_BYTES,
) -> int:
    """Set every BatchNormalization's moving mean/variance to the exact statistics of its
    input over ``windows`` (inference mode); returns the layers updated.

    Keras keeps an exponential average (momentum 0.99), which after a few hundred steps
    still remembers its initial 0/1: a model trained briefly on a small set then scores
    near chance in inference mode. Re-estimating the statistics on training windows after
    training ("precise BN") makes inference see what training saw, after any number of steps.

    In bounded memory: ``windows`` (an array or anything sliced like one, such as a
    dataset's ``WindowView``) is read a batch at a time, a batch holds at most
    ``batch_size`` windows and at most ``memory_bytes`` of float32 in its widest activation
    (the post's wave model at 8,000 samples and 256 filters: 8 windows), and only float64
    sums of ``x`` and ``x**2`` per channel are kept. Every BatchNorm whose input is ready is
    measured in the same pass (one pass per depth: see :func:`batch_norm_plan`).
    """
    if len(windows) == 0:
        return 0
    updated = 0
    for part in _functional_parts(model):
        for extractor, norms, widest in batch_norm_plan(part):
            step = max(1, min(int(batch_size), int(memory_bytes) // (4 * widest)))
            sums = [None] * len(norms)
            for start in range(0, len(windows), step):
                batch = np.asarray(windows[start : start + step], dtype=np.float32)
                if batch.ndim == 2:
                    batch = batch[:, :, None]
                outputs = extractor(batch, training=False)
                outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
                for index, tensor in enumerate(outputs):
                    total, squares, count = _channel_sums(np.asarray(tensor))
                    if sums[index] is None:
                        sums[index] = [total, squares, count]
                    else:
                        sums[index][0] += total
                        sums[index][1] += squares
                        sums[index][2] += count
            for norm, (total, squares, count) in zip(norms, sums, strict=True):
                mean = total / count
                variance = np.maximum(squares / count - mean**2, 0.0)
                norm.moving_mean.assign(mean.astype(np.float32))
                norm.moving_variance.assign(variance.astype(np.float32))
                updated += 1
    return updated
