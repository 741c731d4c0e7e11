"""The web page: plain HTML, CSS and JS from ``service/static/``, no build step.

The page itself only talks to the public API (``POST /predict``, ``GET /v1/model``), so it adds
no endpoint of its own beyond serving files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: ``service/static/``: the page is part of the service package, beside the API.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """Upload or record audio and see the emotion; the model tab shows its metrics."""
    return FileResponse(STATIC_DIR / "index.html")


def static_files() -> StaticFiles:
    """The page's assets, mounted at ``/static`` (a router cannot carry a mount)."""
    return StaticFiles(directory=STATIC_DIR)
