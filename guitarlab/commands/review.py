"""``guitarlab review``: the corpus in the browser (listen, look, relabel, exclude)."""

from __future__ import annotations

import click

from guitarlab.commands import library_option, user_option
from guitarlab.corpus.errors import GuitarlabError


@click.command("review")
@click.argument("corpus", type=click.Path(file_okay=False))
@click.option(
    "--run",
    "run_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="A run folder: show its labels over time and a queue of likely mistakes.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0: any free port).",
)
@library_option(
    "--host",
    type=str,
    default="guitarlab.review.app:create_app(host)",
    help="Address to listen on; 0.0.0.0 opens the page to your network (a warning).",
)
@user_option()
def review_command(
    corpus: str, run_dir: str | None, port: int, host: str, user: str | None
) -> None:
    """Review and relabel CORPUS in the browser: play takes, see their waveform, spectrogram
    and checks, fix labels for a whole take, exclude files and bad time spans, and draw,
    label (keys 1-9), move and delete the take's segments (labels in time).

    Prints the address with a random token; every request must carry it. Edits go to
    manifest.csv or segments.csv (atomically, under the manifest's lock) and
    history.jsonl; 'dataset build' leaves out excluded files and spans. With --run,
    "Review queue" labels every file in the background (progress on the page) while the
    page goes on answering. Ctrl-C or SIGTERM stops the server.

    \b
    Examples:
      guitarlab review my-corpus
      guitarlab review my-corpus --run my-run --port 8800
    """
    import socket

    import uvicorn

    from guitarlab.review import create_app, new_token

    token = new_token()
    app = create_app(corpus, token=token, host=host, run=run_dir, user=user)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until the server accepts them
    except OSError as exc:
        sock.close()
        raise GuitarlabError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
        ) from None
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if host in ("0.0.0.0", "::", ""):
        click.echo(
            f"warning: --host {host} serves the corpus to every machine that can reach this one "
            "(the token still guards it); use 127.0.0.1 unless you mean it",
            err=True,
        )
    address = f"[{shown}]" if ":" in shown else shown
    click.echo(f"guitarlab review: http://{address}:{port}/?token={token}", nl=True)
    click.echo("open that address in your browser; Ctrl-C (or SIGTERM) stops the server", err=True)
    # log_config=None: uvicorn's own logging dictConfig would close every handler the
    # process already has (a host program's log files, pytest's capture); its warnings
    # reach standard error through the root logger instead
    # timeout_graceful_shutdown: Ctrl-C or SIGTERM waits at most 2 s for open requests (a
    # long one, an audio stream, never holds the server up); the queue's thread is a daemon
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


COMMANDS = [review_command]
