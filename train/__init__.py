"""The train stage: LSTM-FCN models, training runs, evaluation, baselines and prediction.

Reads dataset folders (``guitarlab.datasets``) and writes run folders: model, run.json,
reports. Never imports the recorder or the synthetic guitar.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "baselines": ("centroid_threshold_accuracy", "spectral_centroid_hz"),
        "evaluate": ("evaluate_run", "honest_scores"),
        "config": ("TrainConfig",),
        "fit": ("fit", "fit_dataset"),
        "models": ("ensemble", "lstm_fcn", "spectrogram_lstm_fcn"),
        "predict": ("predict_files",),
        "retrain": ("corpus_changes", "file_decisions", "write_retrain_report"),
        "rundir": ("load_run", "update_run_json"),
    },
)
