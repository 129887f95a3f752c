"""The review app's guard, as Jupyter does it: a random token on every request, and a Host
header that names this machine (so a page elsewhere cannot reach the app by DNS rebinding).

A pure ASGI middleware: it answers 400/403 with one line of text before any route runs,
and when the token came in the address (``?token=...``) it sets a cookie, so the page's
own requests (audio, images, the JSON API) carry it without putting it in every URL.

A cookie alone never writes: browsers send it from any page on this machine (SameSite
does not tell ports of 127.0.0.1 apart), so a plain HTML form on another local port could
otherwise exclude rows or undo. A write (any method but GET/HEAD/OPTIONS) needs the token
in a header (``X-Guitarlab-Token``, which the page sends, or ``Authorization: Bearer``),
which another origin cannot set without a CORS preflight this app never grants, or an
``Origin`` that is this server's own; an ``Origin`` from anywhere else is refused.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
TOKEN_HEADER = "x-guitarlab-token"
READ_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_PORTS = {"http": 80, "https": 443}


def new_token() -> str:
    """A fresh random token (32 url-safe characters)."""
    return secrets.token_urlsafe(24)


def allowed_hosts(host: str) -> set[str]:
    """The names a request's Host header may give: this machine's, plus ``host`` itself.

    A wildcard bind (``0.0.0.0``) adds this machine's name and addresses.
    """
    names = {*LOCAL_HOSTS, host.strip("[]").lower()} - {""}
    if host in WILDCARD_HOSTS:
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        with contextlib.suppress(OSError):
            names |= {info[4][0] for info in socket.getaddrinfo(hostname, None)}
    return names


def host_name(header: str) -> str:
    """``"127.0.0.1:8765"`` -> ``"127.0.0.1"``, ``"[::1]:8765"`` -> ``"::1"``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """``"127.0.0.1:8765"`` -> ``("127.0.0.1", 8765)``; the scheme's port when none is given.

    Examples
    --------
    >>> host_port("[::1]:80", "http"), host_port("LocalHost", "http")
    (('::1', 80), ('localhost', 80))
    >>> host_port("127.0.0.1:x", "http") is None
    True
    """
    name = host_name(netloc)
    rest = netloc.strip().lower()
    rest = rest[rest.find("]") + 1 :] if rest.startswith("[") else rest
    port = rest.rsplit(":", 1)[1] if rest.count(":") == 1 else ""
    if port and not port.isdigit():
        return None
    return name, int(port) if port else DEFAULT_PORTS.get(scheme, 80)


def same_origin(origin: str, host: str, scheme: str) -> bool:
    """Whether an ``Origin`` header names this server (scheme, host and port of ``Host``).

    Examples
    --------
    >>> same_origin("http://127.0.0.1:8765", "127.0.0.1:8765", "http")
    True
    >>> same_origin("http://127.0.0.1:9999", "127.0.0.1:8765", "http")
    False
    >>> same_origin("null", "127.0.0.1:8765", "http")
    False
    """
    their_scheme, sep, netloc = origin.strip().partition("://")
    if not sep or their_scheme.lower() != scheme or "/" in netloc:
        return False
    theirs = host_port(netloc, scheme)
    return theirs is not None and theirs == host_port(host, scheme)


class TokenGuard:
    """Refuse every request without the token (query, cookie or header) or from another Host,
    and every write that only has a cookie or the address's token (see the module's note)."""

    def __init__(self, app, *, token: str, hosts: set[str]) -> None:
        self.app, self.token, self.hosts = app, token, hosts

    def matches(self, offered: str) -> bool:
        return bool(offered) and secrets.compare_digest(offered.encode(), self.token.encode())

    def cookie_name(self, scope) -> str:
        port = (scope.get("server") or ("", 0))[1]
        return f"guitarlab-review-{port}"  # one per port: two servers never clash

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket":  # the app has none: refuse rather than guard
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return await _refuse(
                send,
                400,
                f"Host {host or '(none)'!r} is not this machine; open the address "
                "'guitarlab review' printed",
            )
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        name = self.cookie_name(scope)
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: no cookie token
            cookies = SimpleCookie()
        bearer = headers.get("authorization", "")
        in_headers = [
            headers.get(TOKEN_HEADER, "").strip(),
            bearer[7:].strip() if bearer.lower().startswith("bearer ") else "",
        ]
        offered = [*query.get("token", []), cookies[name].value if name in cookies else ""]
        if not any(self.matches(o) for o in [*offered, *in_headers]):
            return await _refuse(
                send,
                403,
                "missing or wrong token; open the address 'guitarlab review' printed "
                "(it ends in ?token=...)",
            )
        if scope["method"].upper() not in READ_METHODS:
            origin = headers.get("origin")
            scheme = scope.get("scheme", "http")
            if origin is not None and not same_origin(origin, headers.get("host", ""), scheme):
                return await _refuse(
                    send,
                    403,
                    f"Origin {origin!r} is not this page: edits come only from the review "
                    "page itself",
                )
            if origin is None and not any(self.matches(o) for o in in_headers):
                return await _refuse(
                    send,
                    403,
                    "an edit needs the token in an X-Guitarlab-Token header (the review "
                    "page sends it); a cookie alone cannot write",
                )
        if self.token not in query.get("token", []):
            return await self.app(scope, receive, send)
        cookie = f"{name}={self.token}; Path=/; HttpOnly; SameSite=Strict"

        async def send_with_cookie(message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"set-cookie", cookie.encode())],
                }
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


async def _refuse(send, status: int, line: str) -> None:
    body = (line + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
