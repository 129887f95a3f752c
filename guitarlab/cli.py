"""The ``guitarlab`` command line: parses options and calls the stages, nothing more.

Every stage keeps its commands in ``guitarlab/commands/<stage>.py`` as a ``COMMANDS``
list; heavy imports (TensorFlow, pedalboard, sounddevice) happen inside the callbacks so
``guitarlab --help`` stays instant.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
from pathlib import Path

import click

from guitarlab import __version__
from guitarlab.corpus.atomic import write_text_atomic
from guitarlab.corpus.errors import GuitarlabError

COMMAND_MODULES = (
    "corpus",
    "synth",
    "recorder",
    "audio_server",
    "reamp",
    "session",
    "augment",
    "dataset",
    "train",
    "workflow",
    "review",
    "labels",
)


class GuitarlabGroup(click.Group):
    """A group that turns user mistakes into one line and exit code 1 (unless ``--debug``)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own (usage errors, --help, Ctrl-C): it prints them
        except (GuitarlabError, OSError) as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(_one_line(exc)) from None
        except RuntimeError as exc:  # soundfile's LibsndfileError, should a stage miss one
            if (ctx.obj or {}).get("debug"):
                raise
            if type(exc).__name__ != "LibsndfileError":
                raise click.ClickException(_crash_line(exc)) from None
            raise click.ClickException(
                f"audio file error ({_one_line(exc)}); is the disk full, or the file damaged?"
            ) from None
        except Exception as exc:  # a bug, not a user mistake: one line and where the log is
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(_crash_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def crash_folder() -> Path:
    """Where crash logs go: ``$XDG_STATE_HOME/guitarlab`` (default ``~/.local/state``).

    The XDG state folder is for logs a user may want later but need not back up.
    """
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "guitarlab"


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of ``exc`` (with the command line) to a new crash log.

    Returns its path, or None when it could not be written (a read-only home): the
    one-line message must still come out.
    """
    when = time.strftime("%Y%m%d-%H%M%S")
    text = (
        f"guitarlab {__version__}, python {sys.version.split()[0]}, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        f"command: {' '.join(sys.argv)}\n\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    try:
        folder = crash_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{when}-{os.getpid()}.log"
        write_text_atomic(path, text)
        return path
    except OSError:
        return None


def _crash_line(exc: BaseException) -> str:
    """The one line an unexpected error gets: what happened, and where the traceback is."""
    log = write_crash_log(exc)
    where = f"traceback in {log}" if log else "the traceback could not be saved"
    return (
        f"unexpected error: {type(exc).__name__}: {_one_line(exc)} "
        f"(a bug in guitarlab; {where}; rerun with --debug to print it)"
    )


@click.group(
    cls=GuitarlabGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="guitarlab")
@click.option("--debug", is_flag=True, help="Show the full traceback when something goes wrong.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Record, augment, label and learn guitar audio.

    \b
    Example (a session, stage by stage):
      guitarlab corpus init my-corpus
      guitarlab synth --corpus my-corpus              # or: guitarlab record ...
      guitarlab augment --corpus my-corpus --tones clean,crunch,distorted
      guitarlab dataset build --corpus my-corpus --out my-dataset
      guitarlab train --dataset my-dataset --out my-run
      guitarlab evaluate my-run
    """
    ctx.ensure_object(dict)["debug"] = debug


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"guitarlab.commands.{_name}").COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    cli(prog_name="guitarlab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
