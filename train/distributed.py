"""Devices and strategies (``choose_strategy``, ``is_chief``) and training across machines.

Across machines: a custom loop under ``MultiWorkerMirroredStrategy``.

Why not ``model.fit``: Keras 3's fit fails under MultiWorkerMirroredStrategy with two or
more workers (keras-team/keras#20585). A plain ``tf.function`` step run with
``strategy.run`` works: the model and optimizer are built under ``strategy.scope()``,
Keras's optimizer all-reduces the gradients in ``apply_gradients``, and every worker
ends each step with the same trainable weights.

The loop drives the run's own Keras callbacks (learning-rate schedule, NaN guard, CSV
log, checkpoints, ETA line, progress bar) with the same calls ``fit`` makes, so the run
folder is written by the same code whichever loop trained it.

One thing fit does not need and this loop does: BatchNormalization's moving mean and
variance are updated from each worker's own batches (their variables aggregate with
"none"), so they drift apart. They are averaged over the workers at the end of every
epoch, before validation and checkpoints; for the moving mean (an exponential average,
linear in the batch means) that equals updating it from the global batches.
"""

from __future__ import annotations

import json
import os

import numpy as np

from guitarlab.corpus.errors import TrainError


def cluster_workers() -> int:
    """How many training tasks (``chief`` and ``worker``) ``TF_CONFIG`` names (0 without)."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def task_index() -> int:
    """This process's index among the workers in ``TF_CONFIG`` (0 without TF_CONFIG)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return int(config.get("task", {}).get("index", 0))


def needs_custom_loop(strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy over two or more workers."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        cluster_workers() > 1
    )


def shard_by_data(dataset):
    """The dataset with auto-sharding by element (every worker reads the same pipeline,
    seeded alike, and keeps its share of each global batch): file sharding would need one
    file per worker, which neither arrays nor a dataset folder's windows provide."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def mix_batches(dataset, seed: int):
    """Each global batch with its rows in a random order, the same on every worker.

    A worker trains on its own slice of every global batch, and BatchNormalization
    normalizes by that slice's statistics. A dataset folder gathers each batch in index
    order (sorted by file, so by guitar): unmixed, one worker would see mostly one guitar
    and the other the other, and the batch statistics would carry the label.
    """
    import tensorflow as tf

    def mix(index, batch):
        x, y = batch
        key = tf.stack([tf.constant(seed, tf.int64), index])
        order = tf.argsort(tf.random.stateless_uniform(tf.shape(y)[:1], seed=key))
        return tf.gather(x, order), tf.gather(y, order)

    return dataset.enumerate().map(mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _per_sample(outputs, labels, n_classes: int):
    """Per-window loss and hit (1.0 right, 0.0 wrong), as float32 vectors."""
    import keras
    import tensorflow as tf

    outputs = tf.cast(outputs, tf.float32)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int64)
    if n_classes == 2:
        loss = keras.losses.binary_crossentropy(tf.cast(labels, tf.float32)[:, None], outputs)
        guess = tf.cast(outputs[:, 0] > 0.5, tf.int64)
    else:
        loss = keras.losses.sparse_categorical_crossentropy(labels, outputs)
        guess = tf.argmax(outputs, axis=-1)
    return tf.reshape(loss, [-1]), tf.cast(tf.equal(guess, labels), tf.float32)


def _steps(strategy, model, n_classes: int, class_weight: dict | None):
    """The distributed train and test steps; each returns (loss sum, hits, windows) summed
    over all replicas of all workers, so every worker sees the same numbers."""
    import tensorflow as tf

    optimizer = model.optimizer
    weights = (
        tf.constant([float(class_weight.get(c, 1.0)) for c in range(n_classes)], tf.float32)
        if class_weight
        else None
    )

    def sums(loss, hits):
        return tf.stack(
            [tf.reduce_sum(loss), tf.reduce_sum(hits), tf.cast(tf.size(hits), tf.float32)]
        )

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            loss, hits = _per_sample(model(x, training=True), y, n_classes)
            if weights is not None:
                loss = loss * tf.gather(weights, tf.cast(tf.reshape(y, [-1]), tf.int64))
            # mean over the global batch: the all-reduce (a sum) then gives its gradient
            total = tf.nn.compute_average_loss(loss)
            if model.losses:
                total += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(total)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return sums(loss, hits)

    def test_replica(x, y):
        return sums(*_per_sample(model(x, training=False), y, n_classes))

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(train_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function
    def test_step(batch):
        per_replica = strategy.run(test_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return train_step, test_step


def _state_sync(strategy, model):
    """A function that averages the float non-trainable variables (BatchNorm's moving
    statistics) over all replicas, so every worker holds the same model."""
    import tensorflow as tf

    state = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    if not state:
        return lambda: None

    def replica_mean():
        context = tf.distribute.get_replica_context()
        return context.all_reduce(
            tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in state]
        )

    @tf.function
    def averaged():
        return strategy.run(replica_mean)

    def sync() -> None:
        means = tf.nest.map_structure(
            lambda value: strategy.experimental_local_results(value)[0], averaged()
        )
        for variable, value in zip(state, means, strict=True):
            variable.assign(value)

    return sync


def same_on_every_worker(strategy, value: int, what: str) -> None:
    """Raise the same TrainError on every worker when they disagree on ``value`` (e.g. the
    epoch to resume from), instead of deadlocking in a later collective."""
    import tensorflow as tf

    @tf.function
    def summed(local):
        per_replica = strategy.run(tf.identity, args=(local,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    count, total, squares = summed(tf.constant([1, value, value * value], tf.int64)).numpy()
    if squares * count != total * total:  # zero variance: all values are equal
        raise TrainError(
            f"the workers disagree on {what} (this worker: {value}); with --resume every "
            "worker needs its own last checkpoint (the chief's run folder, worker-N/ on the "
            "others): start a fresh run"
        )


def _logs(totals: np.ndarray, prefix: str = "") -> dict[str, float]:
    count = max(float(totals[2]), 1.0)
    return {
        f"{prefix}loss": float(totals[0] / count),
        f"{prefix}accuracy": float(totals[1] / count),
    }


def fit_multiworker(
    model,
    strategy,
    train_data,
    val_data=None,
    *,
    n_classes: int,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: list | None = None,
    class_weight: dict | None = None,
    verbose: int = 1,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``model`` (compiled under ``strategy.scope()``) for epochs ``initial_epoch``
    to ``epochs`` on tf.data datasets of global batches; returns the history.

    Every worker must call it with the same datasets (same seed, same number of batches:
    batch with ``drop_remainder=True``), as it makes the same collective calls on each.
    The logs handed to callbacks are ``loss``/``accuracy`` (and ``val_`` ones), as in
    ``model.fit``: per-window means over the epoch, over all workers.
    """
    import keras

    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    cardinality = int(train_data.cardinality())
    steps = cardinality if cardinality > 0 else None
    train = strategy.experimental_distribute_dataset(shard_by_data(mix_batches(train_data, seed)))
    val = (
        strategy.experimental_distribute_dataset(shard_by_data(val_data))
        if val_data is not None
        else None
    )
    train_step, test_step = _steps(strategy, model, n_classes, class_weight)
    sync = _state_sync(strategy, model)
    history = keras.callbacks.History()
    run_callbacks = keras.callbacks.CallbackList(
        [*(callbacks or []), history],
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )
    model.stop_training = False
    logs: dict[str, float] = {}
    run_callbacks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        run_callbacks.on_epoch_begin(epoch)
        totals = np.zeros(3)
        for batch, inputs in enumerate(train):
            run_callbacks.on_train_batch_begin(batch)
            totals += np.asarray(train_step(inputs), dtype=np.float64)
            run_callbacks.on_train_batch_end(batch, _logs(totals))
            if model.stop_training:  # the same on every worker: the losses are all-reduced
                break
        sync()
        logs = _logs(totals)
        if val is not None:  # as fit: validate even an epoch stopped early
            val_totals = np.zeros(3)
            for inputs in val:
                val_totals += np.asarray(test_step(inputs), dtype=np.float64)
            logs.update(_logs(val_totals, "val_"))
        run_callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    run_callbacks.on_train_end(logs)
    return history.history


# ----------------------------------------------------------------------------- devices


def describe_devices() -> str:
    """Which device TensorFlow trains on, in words: 'GPU:0 NVIDIA H100 ...' or 'CPU'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (TensorFlow sees no GPU)"
    names = []
    for index, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(f"GPU:{index} {details.get('device_name', '')}".strip())
    return ", ".join(names)


def choose_strategy(distribute: str):
    """A ``tf.distribute`` strategy and a line that says what it spans.

    ``auto``: MultiWorkerMirrored when ``TF_CONFIG`` lists several workers (trained by
    :func:`guitarlab.train.distributed.fit_multiworker`, as Keras 3's fit fails there),
    Mirrored when there are several GPUs, else the default (one device). ``mirrored`` mirrors over all
    GPUs, or over the logical CPUs when there is no GPU (how the tests exercise it).

    MultiWorkerMirroredStrategy must exist before TensorFlow starts its runtime, so it is
    created first, before anything else touches TensorFlow in the process.
    """
    import tensorflow as tf

    if distribute == "auto" and cluster_workers() > 1:
        distribute = "multiworker"
    if distribute == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainError(
                "--distribute multiworker needs TF_CONFIG (cluster and task) in the environment of every worker"
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return strategy, f"MultiWorkerMirroredStrategy, {strategy.num_replicas_in_sync} replica(s)"
    gpus = tf.config.list_logical_devices("GPU")
    if distribute == "auto":
        distribute = "mirrored" if len(gpus) > 1 else "none"
    if distribute == "none":
        return tf.distribute.get_strategy(), f"one device: {describe_devices()}"
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return strategy, f"MirroredStrategy over {', '.join(devices)}"


def is_chief() -> bool:
    """Whether this process writes the run: the ``chief`` task, else worker 0 when the
    cluster has no chief (TensorFlow's convention); always without TF_CONFIG."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if task.get("type", "chief") == "chief":
        return True
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and not has_chief
