"""The web UI: the Vite build's files, and ``index.html`` for every client-side route.

The build (``gateway/ui``, built by ``make``) lands in ``static/ui``. Until it exists the gateway
serves a placeholder page that says how to build it, so the API works without Node.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
UI_DIR = STATIC / "ui"
# Paths the UI never answers for, even when nothing else does: an unknown API path is a 404 problem.
RESERVED = ("api", "mcp", "healthz")


class _HashedAssets(StaticFiles):
    """Vite names each asset by its content hash, so a browser may keep it for good."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class _UiPath(Convertor[str]):
    """Any path outside the reserved prefixes: those never reach the UI route, so an unknown API
    path keeps its 404 problem (405 for other methods would mislead) and a mount added after the
    UI, such as /mcp, is still reached."""

    regex = "(?!(?:" + "|".join(RESERVED) + ")(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def install(app: FastAPI, directory: Path = UI_DIR) -> None:
    """Serve the UI at ``/``; call it after every other route and mount, since it catches the rest."""
    # Starlette's registry is global; registering again replaces the same convertor.
    register_url_convertor("ui_path", _UiPath())
    app.mount("/assets", _HashedAssets(directory=directory / "assets", check_dir=False), name="ui-assets")
    root = directory.resolve()

    @app.get("/{path:ui_path}", include_in_schema=False)
    async def ui(path: str) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})
        if path:
            # A file of the build's root (favicon, robots.txt …), never anything outside it.
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                return FileResponse(candidate)
        # Every other path is a route of the single-page app: index.html, revalidated each time so
        # a rebuild's new asset names are picked up.
        return HTMLResponse(index.read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})
