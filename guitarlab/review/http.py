"""What every review route shares: reading a request's body and headers, answering an error.

A ``GuitarlabError`` becomes a 4xx with one line (``{"error": "..."}``); a body is read
only up to 64 KiB and refused, with one line, when it is not a flat JSON object.
"""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import JSONResponse

from guitarlab.corpus import edits
from guitarlab.corpus.errors import GuitarlabError, ManifestConflict
from guitarlab.review.files import Forbidden, NotFound

MAX_BODY = 64 * 1024  # an edit is a few labels; anything larger is not one

STATUS = ((edits.UnknownRow, 404), (NotFound, 404), (Forbidden, 403), (ManifestConflict, 409))


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """A ``GuitarlabError`` as a 4xx with one line of text."""
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 400)
    return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status)


def page_bounds(params) -> tuple[int, int | None]:
    """``(offset, limit)`` from the query; no ``limit`` means every row (older callers)."""
    out = []
    for name in ("offset", "limit"):
        text = params.get(name, "")
        if text == "":
            out.append(None)
            continue
        try:
            value = int(text)
        except ValueError:
            raise GuitarlabError(f"{name} must be a whole number, not {text!r}") from None
        if value < 0:
            raise GuitarlabError(f"{name} must be 0 or more, not {value}")
        out.append(value)
    return out[0] or 0, out[1]


def version_header(request: Request) -> str | None:
    """The version the client read, from ``If-Match`` (quotes and ``W/`` dropped)."""
    value = request.headers.get("if-match")
    if not value or value.strip() == "*":
        return None
    return value.strip().removeprefix("W/").strip('"')


def parse_body(raw: bytes) -> dict:
    """An edit's JSON body as a dict, or ``GuitarlabError`` (a 400) saying what is wrong.

    Refuses what would otherwise end as a 500 further in: text that is not UTF-8, a lone
    surrogate (``"\\ud800"``, which no file can store), nesting deep enough to exhaust
    the parser, ``NaN``/``Infinity``, and bodies over 64 KiB.

    Examples
    --------
    >>> parse_body(b'{"guitar": "les_paul"}')
    {'guitar': 'les_paul'}
    >>> parse_body(b'{"guitar": "\\\\ud800"}')
    Traceback (most recent call last):
    ...
    guitarlab.corpus.errors.GuitarlabError: the request body has a lone surrogate (\\ud800...); send UTF-8 text
    """
    if len(raw) > MAX_BODY:
        raise GuitarlabError(f"the request body is over {MAX_BODY // 1024} KiB; send one edit")

    def no_constant(name: str) -> float:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise GuitarlabError("the request body is not UTF-8 text; send JSON") from None
    except RecursionError:
        raise GuitarlabError(
            "the request body is nested too deeply; send a flat JSON object"
        ) from None
    except ValueError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not JSON"
        raise GuitarlabError(f"the request body must be a JSON object ({reason})") from None
    if not isinstance(body, dict):
        raise GuitarlabError("the request body must be a JSON object")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise GuitarlabError(
            "the request body has a lone surrogate (\\ud800...); send UTF-8 text"
        ) from None
    except (RecursionError, ValueError):
        raise GuitarlabError(
            "the request body is nested too deeply; send a flat JSON object"
        ) from None
    if any(isinstance(v, float) and not math.isfinite(v) for v in body.values()):
        raise GuitarlabError("the request body holds a number too large; send finite numbers")
    return body


async def json_body(request: Request) -> dict:
    """The request's JSON object (see :func:`parse_body`); reading stops past 64 KiB."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            break
    return parse_body(bytes(raw))
