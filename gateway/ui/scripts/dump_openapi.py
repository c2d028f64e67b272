"""Write the gateway's OpenAPI document, built in-process, so the UI's types need no running server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi import FastAPI

from crucible_common.settings import Settings
from crucible_gateway.app import create_app


def main(target: str) -> None:
    app = create_app(Settings())
    # create_app wraps the FastAPI app in ASGI middleware; the document is the innermost app's.
    while not isinstance(app, FastAPI):
        app = app.app  # type: ignore[attr-defined]
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(app.openapi(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
