"""The interactive API docs (/docs), served with Swagger UI's files from this server.

FastAPI's own /docs loads them from a public CDN, which a government intranet (or a
machine offline) cannot reach: the page stayed blank. The files come from the
swagger-ui-bundle package instead.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)
ASSETS = Path(swagger_ui_path)
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url, title=f"{request.app.title} API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png")


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> FileResponse:
    if name not in SERVED:  # only these, never a path into the package
        raise HTTPException(404)
    # The files change only with the package's version: cached for a day.
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
