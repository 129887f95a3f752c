"""The recording stage: audio devices, the level meter and level matching, the take writer.

Records takes from an audio interface (or a PulseAudio null sink in tests) into the corpus
and commits their manifest rows through ``guitarlab.corpus``.
"""

from guitarlab.corpus import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "calibration": ("compare_guitars", "load_calibration", "record_calibration"),
        "devices": ("list_devices", "open_input", "open_output", "resolve_device"),
        "loopback": ("BlockLoop", "run_loop"),
        "meter": ("LevelMeter", "gain_advice_db"),
        "recover": ("recover_takes",),
        "server": ("audio_server", "start_audio_server"),
        "session": ("measure_level", "record_take", "record_takes"),
        "shotlist": ("read_plan", "plan_status", "run_session"),
        "take": ("TakeWriter",),
    },
)
