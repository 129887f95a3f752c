"""Train stage: LSTM-FCN models, training, evaluation and prediction."""
