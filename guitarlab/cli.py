"""The ``guitarlab`` command line: parses options and calls the stages, nothing more.

Every stage keeps its commands in ``guitarlab/commands/<stage>.py`` as a ``COMMANDS``
list; heavy imports (TensorFlow, pedalboard, sounddevice) happen inside the callbacks so
``guitarlab --help`` stays instant.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from guitarlab import __version__
from guitarlab.corpus.errors import GuitarlabError

COMMAND_MODULES = (
    "corpus",
    "synth",
    "recorder",
    "reamp",
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
        except (GuitarlabError, OSError) as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(_one_line(exc)) from None
        except RuntimeError as exc:  # soundfile's LibsndfileError, should a stage miss one
            if type(exc).__name__ != "LibsndfileError" or (ctx.obj or {}).get("debug"):
                raise
            raise click.ClickException(
                f"audio file error ({_one_line(exc)}); is the disk full, or the file damaged?"
            ) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


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
    A session, stage by stage:
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
