"""The train stage: LSTM-FCN models, training runs, evaluation, baselines and prediction.

Reads dataset folders (``guitarlab.datasets``) and writes run folders: model, run.json,
reports. Never imports the recorder or the synthetic guitar.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "auto": ("fit_auto", "fit_features_dataset"),
        "baselines": ("centroid_threshold_accuracy", "spectral_centroid_hz"),
        "evaluate": ("evaluate_run", "honest_scores"),
        "config": ("TrainConfig",),
        "features": ("AveragedModel", "FeaturesModel", "fit_features", "window_features"),
        "fit": ("fit", "fit_dataset"),
        "models": ("ensemble", "lstm_fcn", "spectrogram_lstm_fcn"),
        "predict": ("predict_files",),
        "retrain": ("corpus_changes", "file_decisions", "write_retrain_report"),
        "rundir": ("load_run",),
        "runmeta": ("RunMeta", "load_run_meta", "update_run_meta"),
    },
)
