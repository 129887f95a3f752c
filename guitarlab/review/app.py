"""The review web app: the page, its JSON API, audio with range requests, pictures.

:func:`create_app` puts together the app's state (:class:`~guitarlab.review.state.Review`),
the route groups of :mod:`guitarlab.review.routes` and :mod:`guitarlab.review.segments`,
the guard in front of everything (:class:`~guitarlab.review.security.TokenGuard`) and the
answer to a ``GuitarlabError``: a 4xx with one line (:mod:`guitarlab.review.http`).
Routes only parse a request, call :mod:`guitarlab.corpus.edits` (edits, history, undo),
the plotting helpers or :mod:`guitarlab.review.model`; audio and images are found by
manifest id, never by a path from the request, and read from the descriptor that was
checked (:mod:`guitarlab.review.files`).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from guitarlab.corpus.errors import GuitarlabError
from guitarlab.review.http import error_response
from guitarlab.review.model import RunLabels
from guitarlab.review.routes import (
    STATIC,
    edit_routes,
    media_routes,
    page_routes,
    queue_routes,
    row_routes,
)
from guitarlab.review.security import TokenGuard, allowed_hosts
from guitarlab.review.segments import segment_routes
from guitarlab.review.state import Review


def create_app(
    corpus: str | os.PathLike,
    *,
    token: str,
    host: str = "127.0.0.1",
    run: str | os.PathLike | None = None,
    user: str | None = None,
    labels=None,
) -> Starlette:
    """The review app for ``corpus``, guarded by ``token`` and the Host check for ``host``.

    ``run`` (a run folder) adds the model's labels and the review queue; ``labels`` may
    stand in for it (anything with ``predict_row``, ``queue`` and ``label_column``).
    """
    if run is not None and labels is None:
        labels = RunLabels(run, corpus)
    state = Review(corpus, user=user, labels=labels)  # a missing corpus fails here
    routes = [
        *page_routes(token),
        *row_routes(state),
        *media_routes(state),
        *edit_routes(state),
        *queue_routes(state),
        *segment_routes(state),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TokenGuard, token=token, hosts=allowed_hosts(host))],
        exception_handlers={GuitarlabError: error_response},
    )
