"""train/models.py: shapes, parameter counts by hand, attention, mixed precision, widening."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from guitarlab.corpus.errors import TrainError  # noqa: E402
from guitarlab.train.models import (  # noqa: E402
    OUTPUT_LAYER,
    count_lstm_fcn_params,
    lstm_fcn,
    widen_output,
)

SMALL = {"filters": (8, 16, 8), "kernels": (8, 5, 3)}


def test_post_config_parameter_count_by_hand():
    """LSTM-FCN of the post: window 8000, 8 cells, 128/256/128 convs, one sigmoid unit."""
    lstm = 4 * 8 * (8000 + 8 + 1)  # paper layout: one step of 8000 features
    conv1 = 8 * 1 * 128 + 128 + 4 * 128  # kernel*in*out + bias, BatchNorm gamma/beta/mean/var
    conv2 = 5 * 128 * 256 + 256 + 4 * 256
    conv3 = 3 * 256 * 128 + 128 + 4 * 128
    dense = (8 + 128) + 1
    model = lstm_fcn(8000, 2)
    assert model.count_params() == lstm + conv1 + conv2 + conv3 + dense == 522_153
    assert model.output_shape == (None, 1)
    # the post's layout: 8000 LSTM steps of 1 feature, convolutions over 8000 channels
    post = lstm_fcn(8000, 2, layout="post")
    post_count = 4 * 8 * (1 + 8 + 1) + (8 * 8000 * 128 + 128 + 512) + conv2 + conv3 + dense
    assert post.count_params() == post_count


@pytest.mark.parametrize("layout", ["paper", "post"])
@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_shapes_and_counts_small(layout, attention, n_classes):
    model = lstm_fcn(256, n_classes, layout=layout, attention=attention, **SMALL)
    x = np.random.default_rng(0).standard_normal((3, 256, 1)).astype(np.float32)
    out = np.asarray(model(x, training=False))
    width = 1 if n_classes == 2 else n_classes
    assert out.shape == (3, width)
    assert np.all((out >= 0) & (out <= 1))
    if n_classes > 2:
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    expected = count_lstm_fcn_params(256, n_classes, layout=layout, attention=attention, **SMALL)
    assert model.count_params() == expected
    assert any(("attention" in layer.name) == attention for layer in model.layers)


def test_attention_lstm_count_by_hand_and_sequence_attention():
    """ALSTM with u=8 over C features: gates 4u(2C+u+1), attention Cu + u^2 + 2u."""
    u, c = 8, 3
    model = lstm_fcn(40, 2, channels=c, layout="post", attention=True, **SMALL)
    layer = model.get_layer("attention_lstm")
    assert layer.count_params() == 4 * u * (2 * c + u + 1) + c * u + u * u + 2 * u
    # multivariate input works, and the output depends on the whole sequence
    x = np.random.default_rng(1).standard_normal((2, 40, c)).astype(np.float32)
    y = x.copy()
    y[:, 0, :] += 5.0
    assert not np.allclose(np.asarray(model(x)), np.asarray(model(y)))


def test_mixed_precision_keeps_float32_output():
    model = lstm_fcn(128, 3, dtype_policy="mixed_float16", **SMALL)
    assert model.get_layer("lstm").compute_dtype == "float16"
    assert model.get_layer(OUTPUT_LAYER).compute_dtype == "float32"
    out = model(np.zeros((2, 128, 1), np.float32))
    assert np.asarray(out).dtype == np.float32


def test_widen_output_keeps_binary_probabilities():
    model = lstm_fcn(200, 2, **SMALL)
    x = np.random.default_rng(2).standard_normal((5, 200, 1)).astype(np.float32)
    before = np.asarray(model(x, training=False))[:, 0]
    wide = widen_output(model, 3)
    after = np.asarray(wide(x, training=False))
    assert after.shape == (5, 3)
    np.testing.assert_allclose(after[:, 1] / (after[:, 0] + after[:, 1]), before, rtol=1e-4)
    with pytest.raises(TrainError, match="cannot widen"):
        widen_output(wide, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "sideways"}, "layout 'sideways'"),
        ({"filters": (8, 16), "kernels": (8, 5, 3)}, "same length"),
    ],
)
def test_bad_options_raise_train_error(kwargs, message):
    with pytest.raises(TrainError, match=message):
        lstm_fcn(100, 2, **kwargs)
    with pytest.raises(TrainError, match="at least 2 classes"):
        lstm_fcn(100, 1)
