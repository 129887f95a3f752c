"""``guitarlab review``: a local web page to listen to, look at and fix a corpus.

``create_app(corpus, token=...)`` is the Starlette app (put together in ``app``, its
routes in ``routes`` and ``segments``, its state in ``state``, request parsing in ``http``,
the token and Host guard in ``security``, a run's labels and the review queue in
``model``); the page itself is ``static/`` (plain HTML, CSS and JavaScript, nothing fetched from the network).
The edits are :mod:`guitarlab.corpus.edits`'s.
"""

from guitarlab.review.app import create_app
from guitarlab.review.security import new_token

__all__ = ["create_app", "new_token"]
