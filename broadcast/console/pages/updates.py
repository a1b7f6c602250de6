"""One update: its deliveries, approval, correction, retraction, media and relay kit."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from broadcast import audit
from broadcast.areas import service as areas
from broadcast.console.pages.common import (
    Codes,
    Line,
    Text,
    back_to,
    bodies_of,
    incident_url,
    perform,
    refused_to,
    show_page,
)
from broadcast.console.session import OfficerDep, UploaderDep, ViewerDep
from broadcast.delivery import queue
from broadcast.deps import Id, SessionDep
from broadcast.errors import DomainError
from broadcast.i18n import _
from broadcast.incidents.models import Incident
from broadcast.media import service as media
from broadcast.media.api import accept_upload
from broadcast.relay import service as relay
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update

router = APIRouter()


# --- one update ----------------------------------------------------------------------------


@router.get("/updates/{update_id}", response_class=HTMLResponse)
def update_page(request: Request, update_id: Id, session: SessionDep, viewer: OfficerDep):
    update = timeline.get(session, update_id)
    return show_page(
        request,
        "console/update.html",
        viewer,
        update=update,
        incident=session.get(Incident, update.incident_id) if update.incident_id else None,
        counts=queue.counts_by_state(session, update_id),
        trail=audit.recent(session, subject=f"update:{update_id}", limit=50),
    )


@router.get("/updates/{update_id}/deliveries.json")
def update_deliveries(update_id: Id, session: SessionDep, viewer: OfficerDep):
    timeline.get(session, update_id)
    return queue.counts_by_state(session, update_id)


@router.post("/updates/{update_id}/approve")
def approve(request: Request, update_id: Id, session: SessionDep, viewer: OfficerDep):
    def act(update: Update) -> Update:
        return timeline.approve(
            session, update, officer=viewer.user, channels=request.app.state.channels
        )

    return _on_update(request, session, update_id, act, _("Approved and published."))


@router.post("/updates/{update_id}/reject")
def reject(
    request: Request,
    update_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    reason: Text = "",
):
    def act(update: Update) -> Update:
        return timeline.reject(session, update, officer=viewer.user, reason=reason or None)

    return _on_update(request, session, update_id, act, _("Proposal rejected."))


@router.post("/updates/{update_id}/correct")
def correct(
    request: Request,
    update_id: Id,
    session: SessionDep,
    viewer: OfficerDep,
    body_nl: Text,
    body_en: Text = "",
):
    def act(update: Update) -> Update:
        return timeline.correct(
            session,
            update,
            officer=viewer.user,
            body=bodies_of(body_nl, body_en),
            channels=request.app.state.channels,
        )

    done = _("Correction published; the original stays visible, struck through.")
    return _on_update(request, session, update_id, act, done)


@router.post("/updates/{update_id}/retract")
def retract(request: Request, update_id: Id, session: SessionDep, viewer: OfficerDep, reason: Text):
    def act(update: Update) -> Update:
        return timeline.retract(
            session, update, officer=viewer.user, reason=reason, channels=request.app.state.channels
        )

    return _on_update(
        request, session, update_id, act, _("Update retracted, with the reason shown.")
    )


def _on_update(request, session, update_id: int, act: Callable[[Update], Update], done: str):
    """One officer action on one update, then back to its incident at the resulting update."""
    update = timeline.get(session, update_id)
    back = f"/console/incidents/{update.incident_id}"
    return perform(
        request, session, lambda: f"{back}#update-{act(update).id}", fallback=back, done=done
    )


@router.post("/updates/{update_id}/resend-failed")
def resend_failed(request: Request, update_id: Id, session: SessionDep, viewer: OfficerDep):
    timeline.resend_failed(session, timeline.get(session, update_id), viewer.user)
    return back_to(f"/console/updates/{update_id}", _("Failed deliveries queued again."))


# --- photos and videos ---------------------------------------------------------------------


@router.post("/updates/{update_id}/media")
async def add_media(request: Request, update_id: Id, viewer: UploaderDep):
    """A photo or short video for a draft or a proposal (streamed, checked, cleaned)."""
    back = await incident_url(request, update_id)
    try:
        await accept_upload(request, update_id, viewer.user)
    except DomainError as exc:
        return refused_to(back, exc)
    return back_to(back, _("Photo added; location and camera data were removed."))


@router.post("/media/{media_id}/delete")
def delete_media(request: Request, media_id: Id, session: SessionDep, viewer: ViewerDep):
    item = media.get(session, media_id)
    back = f"/console/incidents/{timeline.get(session, item.update_id).incident_id}"
    try:
        path = media.remove(session, item, user=viewer.user, settings=request.app.state.settings)
    except DomainError as exc:
        return refused_to(back, exc)
    session.commit()  # the row first; then the file can go
    path.unlink(missing_ok=True)
    return back_to(f"{back}#update-{item.update_id}", _("Photo removed."))


# --- relay kit -----------------------------------------------------------------------------


@router.get("/updates/{update_id}/relay", response_class=HTMLResponse)
def relay_page(request: Request, update_id: Id, session: SessionDep, viewer: ViewerDep):
    language = "en" if request.query_params.get("kit") == "en" else "nl"
    texts = relay.kit_for(
        session,
        update_id,
        viewer=viewer.user,
        language=language,
        public_url=request.app.state.settings.public_url,
    )
    update = timeline.get(session, update_id)
    reached = relay.relays_of(session, update_id) if viewer.is_officer else []
    return show_page(
        request,
        "console/relay.html",
        viewer,
        update=update,
        texts=texts,
        kit_language=language,
        areas=areas.all_areas(session),
        reached=reached,
        by_area=relay.counts([row for row, _user in reached])[0],
    )


@router.post("/updates/{update_id}/relayed")
def relayed(
    request: Request,
    update_id: Id,
    session: SessionDep,
    viewer: ViewerDep,
    format: Line,
    place: Line = "",
    areas_: Codes = [],  # noqa: B006
):
    here = f"/console/updates/{update_id}/relay"

    def work() -> str:
        relay.record(
            session, update_id, user=viewer.user, format=format, place=place, area_codes=areas_
        )
        return here

    return perform(
        request, session, work, fallback=here, done=_("Thank you: noted where you shared it.")
    )
