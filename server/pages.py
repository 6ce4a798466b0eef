"""The browser pages the app serves: GraphiQL (offline) and the live dashboard."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"
# The page reads its configuration from this object; in dev mode it carries a token.
_CONFIG_MARKER = 'window.WORKFLOW_RUNS = {"token": null};'


def _page(name: str, token: str | None) -> HTMLResponse:
    html = (STATIC / name / "index.html").read_text(encoding="utf-8")
    if token is not None:
        # The token comes from the server's own settings, never from the request.
        config = orjson.dumps({"token": token}).decode().replace("</", "<\\/")
        html = html.replace(_CONFIG_MARKER, f"window.WORKFLOW_RUNS = {config};")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def graphiql(request: Request, dev_token: str | None) -> HTMLResponse:
    """GraphiQL, with the Authorization header prefilled in dev mode."""
    return _page("graphiql", dev_token)


def dashboard(request: Request, dev_token: str | None) -> HTMLResponse:
    """The live dashboard; it takes its token from the URL fragment or its token field."""
    return _page("dashboard", dev_token)
