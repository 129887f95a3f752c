"""A tone preset as the amp in the virtual loop (``guitarlab audio-server --through crunch``).

The wiring between two stages: ``augment`` builds the pedalboard chain from a preset,
``recorder.loopback`` runs it block by block from the virtual output's monitor into
the virtual input. It runs as its own small process (``python -m guitarlab.through
crunch --rate 48000``), started and stopped by the audio server, so the loop keeps
running whatever the recording process does.

Examples
--------
>>> from guitarlab.recorder.server import audio_server        # doctest: +SKIP
>>> with audio_server(through=through_command("crunch")):     # doctest: +SKIP
...     ...  # what 'pulse' plays comes back on 'pulse' through the crunch chain
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import numpy as np

from guitarlab.corpus.defaults import RECORD_RATE


def through_command(
    preset: str, *, rate: int = RECORD_RATE, corpus: str | os.PathLike | None = None
) -> list[str]:
    """The command that runs ``preset`` in the loop; checks the name first (one-line error)."""
    from guitarlab.augment.presets import get_presets

    get_presets([preset], corpus)  # unknown or broken preset: AugmentError, before any start
    command = [sys.executable, "-m", "guitarlab.through", preset, "--rate", str(int(rate))]
    if corpus is not None:
        command += ["--corpus", str(corpus)]
    return command


def preset_process(preset: str, *, rate: int, corpus: str | os.PathLike | None = None):
    """``block -> block`` through the preset's chain, keeping its state between blocks.

    Why not ``augment.render``: that renders whole files with the cabinet's delay
    removed; an amp in a loop is streamed and keeps its delay, as real gear does.
    """
    from guitarlab.augment.presets import chain_from_preset, get_presets

    board = chain_from_preset(get_presets([preset], corpus)[0])

    def process(block: np.ndarray) -> np.ndarray:
        out = board(block.reshape(1, -1), float(rate), reset=False)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    return process


def main(argv: list[str] | None = None) -> int:
    """Run the loop until SIGTERM or SIGINT; prints ``ready`` once the stream runs."""
    from guitarlab.corpus.errors import GuitarlabError
    from guitarlab.recorder.loopback import run_loop

    parser = argparse.ArgumentParser(prog="python -m guitarlab.through")
    parser.add_argument("preset")
    parser.add_argument("--rate", type=int, default=RECORD_RATE)
    parser.add_argument("--corpus", default=None)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    try:
        process = preset_process(args.preset, rate=args.rate, corpus=args.corpus)
        loop = run_loop(
            process,
            sample_rate=args.rate,
            stop=stop,
            on_ready=lambda: print("ready", flush=True),
        )
    except GuitarlabError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(
        f"loop stopped: {loop.blocks} blocks, {loop.frames} frames",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by the audio server
    sys.exit(main())
