"""The run's own Keras callbacks: post schedule, NaN guard, BatchNorm statistics, per-epoch
state for ``--resume``, TensorBoard and the ETA line; built lazily so importing this module
does not load TensorFlow.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.train.config import TrainConfig
from guitarlab.train.rundir import STATE_JSON


def keras_verbose(verbose: int) -> int:
    """Keras's progress bar (1) only on a terminal; one line per epoch (2) in a log file."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def _callback_base():
    import keras

    return keras.callbacks.Callback


class Callbacks:
    """The run's own callbacks, built lazily so importing this module does not load TF."""

    @staticmethod
    def post_schedule(epochs: int, lr: float, fine_tune_lr: float):
        class PostSchedule(_callback_base()):
            """Adam at ``lr`` for ``epochs``, then ``fine_tune_lr`` with fresh moments."""

            def on_epoch_begin(self, epoch, logs=None):
                optimizer = self.model.optimizer
                inner = getattr(optimizer, "inner_optimizer", optimizer)
                if epoch == epochs and epoch > 0:
                    for variable in inner.variables:
                        if (
                            "iteration" not in variable.path
                            and "learning_rate" not in variable.path
                        ):
                            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
                rate = lr if epoch < epochs else fine_tune_lr
                inner.learning_rate.assign(rate)

        return PostSchedule()

    @staticmethod
    def epoch_state(run_dir: Path, monitor: str, best_callback, config: TrainConfig):
        class EpochState(_callback_base()):
            """Save ``last.keras`` and ``state.json`` after every epoch, for ``--resume``."""

            def on_epoch_end(self, epoch, logs=None):
                self.model.save(run_dir / "last.keras")
                state = {
                    "epoch": int(epoch),
                    "config": config.as_dict(),
                    "monitor": monitor,
                    "best": float(best_callback.best),
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                write_text_atomic(run_dir / STATE_JSON, json.dumps(state))

        return EpochState()

    @staticmethod
    def batch_norm_statistics(windows: np.ndarray | None):
        class BatchNormStatistics(_callback_base()):
            """Exact BatchNorm statistics on training windows before every validation pass
            and every checkpoint (see :func:`~guitarlab.train.models.recalibrate_batch_norm`);
            put it first, so the checkpoints save the re-estimated statistics."""

            stale = False

            def on_train_batch_end(self, batch, logs=None):
                self.stale = True

            def _recalibrate(self):
                if self.stale and windows is not None and len(windows):
                    from guitarlab.train.models import recalibrate_batch_norm

                    recalibrate_batch_norm(self.model, windows)
                self.stale = False

            def on_test_begin(self, logs=None):
                self._recalibrate()

            def on_epoch_end(self, epoch, logs=None):
                self._recalibrate()

        return BatchNormStatistics()

    @staticmethod
    def nan_guard():
        class NanGuard(_callback_base()):
            """Stop at the first NaN/inf loss and remember where, so fit can say so."""

            nan_at: tuple[int, int] | None = None
            epoch = 0

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.nan_at = (self.epoch, batch)
                    self.model.stop_training = True

        return NanGuard()

    @staticmethod
    def tensorboard(log_dir: Path):
        """Keras's TensorBoard callback, or per-epoch scalars written with TF alone.

        The ``tensorboard`` package is needed to *view* logs; without it installed the
        event files are still written (by ``tf.summary.write``), so a later install sees them.
        """
        import importlib.util

        import keras

        if importlib.util.find_spec("tensorboard") is not None:
            return keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False)

        class EpochScalars(_callback_base()):
            def on_train_begin(self, logs=None):
                import tensorflow as tf

                self.writers = {
                    kind: tf.summary.create_file_writer(str(log_dir / kind))
                    for kind in ("train", "validation")
                }

            def on_epoch_end(self, epoch, logs=None):
                import tensorflow as tf
                from tensorflow.core.framework.summary_pb2 import SummaryMetadata

                meta = SummaryMetadata()
                meta.plugin_data.plugin_name = "scalars"
                for key, value in (logs or {}).items():
                    kind = "validation" if key.startswith("val_") else "train"
                    with self.writers[kind].as_default():
                        tf.summary.write(
                            f"epoch_{key.removeprefix('val_')}",
                            tf.constant(float(value)),
                            step=epoch,
                            metadata=meta,
                        )
                for writer in self.writers.values():
                    writer.flush()

        return EpochScalars()

    @staticmethod
    def eta_line(total_epochs: int, first_epoch: int, stream=None):
        class EtaLine(_callback_base()):
            """The run's overall progress: a line before each epoch's bar (elapsed, ETA)
            and one at the end; printed between Keras's bars, never inside one."""

            def on_train_begin(self, logs=None):
                self.start = time.perf_counter()

            def _say(self, text: str) -> None:
                print(f"[guitarlab] {text}", file=stream or sys.stdout, flush=True)

            def on_epoch_begin(self, epoch, logs=None):
                done = epoch - first_epoch
                elapsed = time.perf_counter() - self.start
                if done == 0:
                    self._say(f"epochs {epoch + 1}-{total_epochs} of {total_epochs} to go")
                    return
                left = (total_epochs - epoch) * elapsed / done
                self._say(
                    f"{epoch}/{total_epochs} epochs done; elapsed {clock(elapsed)}, ETA {clock(left)}"
                )

            def on_train_end(self, logs=None):
                elapsed = time.perf_counter() - self.start
                self._say(f"{total_epochs}/{total_epochs} epochs done in {clock(elapsed)}")

        return EtaLine()


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
