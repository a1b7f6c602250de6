"""Printable A4 posters, one per incident and one for the municipality: for the town hall, the
sandbag depot and places where the power or the internet is out. The QR codes (``segno``) are
inline SVG, so printing a poster asks no other server for anything."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from broadcast.areas import service as areas
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateKind, UpdateState
from broadcast.web.public import Slug, text_to_subscribe
from broadcast.web.rendering import render
from channels.base import Channel

router = APIRouter(include_in_schema=False)
TELEGRAM = "telegram"
LATEST_CHARS = 320  # of the newest update on an incident's poster: it must fit one page


@dataclass(frozen=True)
class Code:
    """One QR code on a poster: what it opens, and the code as SVG markup."""

    url: str
    svg: str


def qr_code(url: str, title: str) -> Code:
    """A full-size QR code (never a Micro QR, which many phone cameras cannot read), with
    error correction M so a folded or stained poster still scans."""
    code = segno.make_qr(url, error="m", boost_error=False)
    svg = code.svg_inline(scale=1, border=4, omitsize=True, title=title, svgclass="qr")
    return Code(url=url, svg=svg)


@router.get("/poster", response_class=HTMLResponse)
async def municipality_poster(request: Request):
    villages = await request.app.state.db.run(lambda s: _villages(s, None), write=False)
    base = request.app.state.settings.public_url.rstrip("/")
    return _poster(request, page_url=f"{base}/", incident=None, latest=None, postcodes=villages)


@router.get("/incidents/{slug}/poster", response_class=HTMLResponse)
async def incident_poster(request: Request, slug: Slug):
    def work(session):
        incident = incidents.by_slug(session, slug)
        updates = timeline.for_incident(session, incident.id, viewer=None)
        return incident, _latest(updates), _villages(session, incident)

    incident, latest, postcodes = await request.app.state.db.run(work, write=False)
    base = request.app.state.settings.public_url.rstrip("/")
    page_url = f"{base}/incidents/{incident.slug}"
    return _poster(
        request, page_url=page_url, incident=incident, latest=latest, postcodes=postcodes
    )


def _poster(
    request: Request,
    *,
    page_url: str,
    incident: Incident | None,
    latest: Update | None,
    postcodes: list[str],
) -> HTMLResponse:
    channels = request.app.state.channels
    telegram = channels.active.get(TELEGRAM)
    return render(
        request,
        "poster.html",
        incident=incident,
        latest=latest,
        latest_chars=LATEST_CHARS,
        page=qr_code(page_url, "QR: " + page_url),
        telegram=_telegram(telegram, postcodes),
        sms=text_to_subscribe(channels.active.values()),
        village=postcodes[0] if incident is not None and len(postcodes) == 1 else None,
        postcode_example=postcodes[0] if postcodes else "",
    )


def _telegram(channel: Channel | None, postcodes: list[str]) -> Code | None:
    """The bot's deep link: for the one village an incident covers it subscribes to that
    village at once (``?start=<postcode>``), otherwise to the whole municipality."""
    if channel is None:
        return None
    link = channel.subscribe_link(postcodes[0] if len(postcodes) == 1 else None)
    return qr_code(link, "QR: " + link) if link else None


def _villages(session, incident: Incident | None) -> list[str]:
    """The first postcode of each village with postcodes (of the incident's areas, if given)."""
    covered = set(incident.areas) if incident is not None else None
    return [
        area.postcodes[0]
        for area in areas.all_areas(session)
        if area.postcodes and (covered is None or area.code in covered)
    ]


def _latest(updates: list[Update]) -> Update | None:
    """The newest update residents see on the page (not an answer to one person's question)."""
    shown = (u for u in updates if u.kind != UpdateKind.answer and u.state == UpdateState.published)
    return next(shown, None)
