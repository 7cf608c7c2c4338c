"""Security headers on every response: a Content-Security-Policy, `nosniff`, no framing, no
referrer.

The API's answers are data, never documents to render: their policy allows nothing at all
(`default-src 'none'`), so a JSON body a browser is tricked into opening as a page runs no
script and loads nothing, and `frame-ancestors 'none'` keeps every answer out of frames.
The web page sets its own, wider policy on its responses (`jobkit_http.web`); a response
that has one keeps it. `X-Content-Type-Options: nosniff` makes browsers believe our
content types (a result document is never sniffed into HTML), and `Referrer-Policy:
no-referrer` keeps job ids in URLs from leaking to other sites.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY: Final = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_CSP: Final = b"content-security-policy"
_ALWAYS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors, for browsers that predate it
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response (a pure ASGI wrapper:
    streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._policy = (_CSP, API_POLICY.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers += [pair for pair in _ALWAYS if pair[0] not in names]
                if _CSP not in names:
                    headers.append(self._policy)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
