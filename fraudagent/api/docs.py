"""/docs: Swagger UI from installed files, nothing from a CDN, under a strict Content-Security-Policy.

FastAPI's own page loads Swagger UI from a public CDN and starts it with an inline script (broken offline,
no CSP). Here `swagger-ui-bundle.js` and `swagger-ui.css` come from the pinned `fastapi-offline` package
(its packaged copy of swagger-ui-dist, Swagger UI 5, which renders OpenAPI 3.1), the start-up code is a
file of ours (`static/swagger-init.js`), and the page allows scripts, styles and connections from this
origin only; Swagger UI's online validator is off. ReDoc is not served. FRAUDAGENT_API_DOCS=false turns
/docs off; the spec stays at /openapi.json.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

HERE = Path(__file__).resolve().parent
ASSETS_PREFIX = "/docs/assets/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src"
    " 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _swagger_dir() -> Path:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the fastapi-offline package (Swagger UI files for /docs) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def assets() -> dict[str, tuple[Path, str]]:
    """name -> (file, media type): everything /docs loads."""
    swagger = _swagger_dir()
    return {
        "swagger-ui-bundle.js": (swagger / "swagger-ui-bundle.js", "text/javascript"),
        "swagger-ui.css": (swagger / "swagger-ui.css", "text/css"),
        "swagger-init.js": (HERE / "static" / "swagger-init.js", "text/javascript"),
    }


def mount(app: FastAPI) -> None:
    files = assets()
    missing = [str(path) for path, _ in files.values() if not path.is_file()]
    if missing:
        raise RuntimeError(f"Swagger UI files for /docs are missing: {missing}")
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    def docs() -> Response:
        title = html.escape(app.title)
        spec = html.escape(app.openapi_url or "/openapi.json", quote=True)
        page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: API docs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSETS_PREFIX}swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-spec="{spec}"></div>
<script src="{ASSETS_PREFIX}swagger-ui-bundle.js"></script>
<script src="{ASSETS_PREFIX}swagger-init.js"></script>
</body>
</html>
"""
        return HTMLResponse(page, headers=HEADERS)

    @router.get(ASSETS_PREFIX + "{name}")
    def asset(name: Annotated[str, PathParam(max_length=64)]) -> Response:
        if name not in files:
            raise HTTPException(404, "no such docs asset")
        path, media_type = files[name]
        return FileResponse(path, media_type=media_type, headers={**HEADERS, "Cache-Control": "public, max-age=3600"})

    app.include_router(router)
