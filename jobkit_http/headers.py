"""Security headers on every response: a Content-Security-Policy and `nosniff`.

The API's answers are data, never documents to render: their policy allows nothing at all
(`default-src 'none'`), so a JSON body a browser is tricked into opening as a page runs no
script and loads nothing, and `frame-ancestors 'none'` keeps every answer out of frames.
`X-Content-Type-Options: nosniff` makes browsers believe our content types (a result
document is never sniffed into HTML). The web page sets its own, wider policy on its
pages, with `X-Frame-Options` and `Referrer-Policy` (`jobkit_http.web.site`); a response
that has a policy keeps it.

Only these two headers go on every answer: they ride on the status endpoint's polls, where
each header is paid for in every response written (measured in docs/performance.md).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
_POLICY: Final = (b"content-security-policy", API_POLICY.encode())
_NOSNIFF: Final = (b"x-content-type-options", b"nosniff")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response (a pure ASGI wrapper:
    streams pass through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), _NOSNIFF]
                if all(name != _POLICY[0] for name, _ in headers):
                    headers.append(_POLICY)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)
