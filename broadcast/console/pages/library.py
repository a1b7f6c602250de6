"""Officers keep the message templates up to date: change, add and remove them (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from broadcast.common import Severity
from broadcast.console.pages.common import Line, Text, perform, show_page
from broadcast.console.session import OfficerDep
from broadcast.deps import SessionDep
from broadcast.i18n import _
from broadcast.library import service as library

router = APIRouter()
HERE = "/console/templates"


@router.get("/templates", response_class=HTMLResponse)
def templates_page(request: Request, session: SessionDep, viewer: OfficerDep):
    path = request.app.state.settings.message_templates_file
    return show_page(
        request,
        "console/templates.html",
        viewer,
        templates=library.load(session, path),
        severities=list(Severity),
    )


@router.post("/templates")
def save(
    request: Request,
    session: SessionDep,
    viewer: OfficerDep,
    key: Line,
    severity: Line,
    body_nl: Text,
    body_en: Text = "",
    title_nl: Line = "",
    title_en: Line = "",
):
    def work() -> str:
        row = library.save(
            session,
            key=key,
            severity=severity,
            title={"nl": title_nl, "en": title_en},
            body={"nl": body_nl, "en": body_en},
            officer=viewer.user,
        )
        return f"{HERE}#template-{row.id}"

    return perform(request, session, work, fallback=HERE, done=_("The template was saved."))


@router.post("/templates/delete")
def delete(request: Request, session: SessionDep, viewer: OfficerDep, key: Line):
    path = request.app.state.settings.message_templates_file

    def work() -> str:
        library.delete(session, path, key, officer=viewer.user)
        return HERE

    return perform(request, session, work, fallback=HERE, done=_("The template was removed."))
