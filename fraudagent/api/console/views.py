"""The analyst console: server-rendered pages at /console plus static JS/CSS at /console/static.

The pages carry no case data and no secret: only the layout and the catalogues (priorities, typologies,
dispositions, actions). The browser signs in with an API key kept in sessionStorage and reads everything
through the JSON API with `Authorization: Bearer`, so every piece of data is still behind the key and its
roles. A strict Content-Security-Policy allows only this origin's scripts, styles and connections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from fraudagent import __version__
from fraudagent.core.models import Action, Disposition, Priority, Typology
from fraudagent.feedback.charts import FIGURES
from fraudagent.feedback.models import Reason

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CaseId = Annotated[str, PathParam(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


def _catalogues() -> dict[str, object]:
    return {
        "priorities": [p.value for p in Priority],
        "typologies": [t.value for t in Typology],
        "dispositions": [d.value for d in Disposition],
        "actions": [a.value for a in Action],
        "reasons": [r.value for r in Reason],
    }


def _page(request: Request, template: str, **context: object) -> Response:
    response = templates.TemplateResponse(request, template, {"version": __version__, **_catalogues(), **context})
    response.headers.update(_HEADERS)
    return response


@router.get("", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    """Sign-in and the case queue."""
    return _page(request, "queue.html", page="queue")


@router.get("/", response_class=HTMLResponse)
def queue_page_slash() -> Response:
    return RedirectResponse("/console", status_code=307)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: CaseId) -> Response:
    """One case: profile, timeline, links, similar cases, the latest report, chat and the decision form."""
    return _page(request, "case.html", page="case", case_id=case_id)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(request: Request) -> Response:
    """Quality over time (evaluators and admins): agreement, verdicts, fallbacks, latency and tokens, drawn as
    server-rendered SVG charts read with the key like every other piece of data."""
    return _page(request, "quality.html", page="quality", figures=FIGURES)


def mount(app: FastAPI) -> None:
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router)
