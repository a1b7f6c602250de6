"""The public site: status page, incident timelines (live), the Atom feed and short links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as InPath
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from feedgen.feed import FeedGenerator
from sse_starlette.sse import EventSourceResponse

from broadcast.areas import service as areas
from broadcast.common import Language, PlainText, stored_id, utcnow, xml_safe
from broadcast.deps import Id, client_address
from broadcast.errors import DomainError
from broadcast.feeds import service as feeds
from broadcast.incidents import instructions
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.media import service as media
from broadcast.questions import service as questions
from broadcast.signup import service as signup
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateState
from broadcast.web import chart, i18n, live
from broadcast.web.cache import PRIVATE, FromMemory, PersonalPages, cached
from broadcast.web.compression import Compression
from broadcast.web.limits import small_form
from broadcast.web.rendering import fragment, page, remember_language, render
from broadcast.web.security import same_origin
from channels.base import Channel

router = APIRouter(include_in_schema=False)
FEED_SIZE = 50
STATIC = Path(__file__).parent / "static"
HTML = "text/html; charset=utf-8"
Slug = Annotated[PlainText, InPath(max_length=200)]  # longer, or with a control character: 404


def install(app: FastAPI) -> None:
    """The static files, compression of every text response (pages, feeds, API, CSS, JS), and
    no caching of personal pages."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Compression)
    app.add_middleware(PersonalPages)
    app.add_middleware(FromMemory)  # outermost of these: a hit skips everything else


def _read(request: Request, work):
    """A read of the public site: never waits for a writer (see ``Database.run``)."""
    return request.app.state.db.run(work, write=False)


@router.get("/", response_class=HTMLResponse)
async def status_page(request: Request):
    shown = await cached(request, lambda: _status_document(request), per_language=True)
    return remember_language(request, shown)


async def _status_document(request: Request) -> tuple[bytes, str]:
    def work(session):
        active, resolved = [], []
        for incident in incidents.listing(session):
            updates = timeline.for_incident(session, incident.id, viewer=None)
            (resolved if incident.status == IncidentStatus.resolved else active).append(
                (incident, updates[0] if updates else None)
            )
        shown = [u for _, u in active if u is not None]
        pinned = instructions.current_for(session, [i.id for i, _ in active])
        with_before = {
            incident_id: (row, instructions.previous(session, row))
            for incident_id, row in pinned.items()
        }
        moments = [_changed_at(i, [u] if u else [], pinned.get(i.id)) for i, u in active]
        last = max((m for m in moments if m is not None), default=None)
        return active, resolved[:10], _public_media(session, shown), with_before, last

    active, resolved, items, pinned, last = await _read(request, work)
    shown = page(
        request,
        "status.html",
        active=active,
        resolved=resolved,
        media=items,
        instructions=pinned,
        last_updated=last,
    )
    return bytes(shown.body), HTML  # bytes already: Starlette's type also allows a memoryview


def _changed_at(incident: Incident, updates: list[Update], pinned) -> datetime | None:
    """When what a page shows of an incident last changed: its newest public update, its
    instruction, or (nothing published yet) its opening."""
    moments = [u.published_at for u in updates if u.published_at is not None]
    if pinned is not None:
        moments.append(pinned.created_at)
    return max(moments, default=incident.created_at)


@router.get("/incidents/{slug}", response_class=HTMLResponse)
async def incident_page(request: Request, slug: Slug):
    if request.query_params.get("asked"):  # "thank you for your question": for the asker alone
        shown = await _incident(request, slug)
        shown.headers["Cache-Control"] = PRIVATE
        return remember_language(request, shown)

    async def document() -> tuple[bytes, str]:
        return bytes((await _incident(request, slug)).body), HTML

    return remember_language(request, await cached(request, document, per_language=True))


async def _incident(
    request: Request, slug: str, *, question: str = "", problem: DomainError | None = None
) -> HTMLResponse:
    """The page, or with a refused question: the reason, and the text kept for another try."""
    now, days = utcnow(), request.app.state.settings.feed_chart_days

    def work(session):
        incident = incidents.by_slug(session, slug)
        updates = timeline.for_incident(session, incident.id, viewer=None)
        others = [
            i for i in incidents.listing(session, include_resolved=False) if i.id != incident.id
        ]
        series = feeds.chart_series(session, incident.id, since=now - timedelta(days=days), now=now)
        heads = _heads(session, incident, updates)
        return incident, updates, others, _public_media(session, updates), series, heads

    incident, updates, others, items, series, heads = await _read(request, work)
    by_id = {u.id: u for u in updates}
    language = i18n.language_of(request)
    translate = i18n.translator(language)
    charts = [chart.render(s, language=language, now=now, days=days, _=translate) for s in series]
    return page(
        request,
        "incident.html",
        incident=incident,
        updates=updates,
        by_id=by_id,
        banner=others,
        media=items,
        charts=charts,
        asked=request.query_params.get("asked") == "1" and problem is None,
        question=question,
        problem=problem,
        status_code=problem.status_code if problem is not None else 200,
        **heads,
    )


def _heads(session, incident: Incident, updates: list[Update]) -> dict:
    """What the top of an incident page shows besides its title: the pinned instruction (and
    the version it replaced) and when the page last changed. Clearing counts as a change."""
    pinned = instructions.current(session, stored_id(incident))
    newest = instructions.history(session, stored_id(incident))[:1]
    return {
        "instruction": pinned,
        "instruction_before": instructions.previous(session, pinned) if pinned else None,
        "last_updated": _changed_at(incident, updates, newest[0] if newest else None),
    }


@router.post("/incidents/{slug}/questions", response_class=HTMLResponse)
async def ask(request: Request, slug: Slug):
    """A resident's question from the incident page; answered on the timeline (post/redirect/get,
    so a reload does not ask twice)."""
    if not same_origin(request):
        return HTMLResponse("cross-site request refused", status_code=403)
    fields = await small_form(request)
    text = fields.get("question", "")
    language = i18n.language_of(request)
    done = RedirectResponse(f"/incidents/{slug}?lang={language}&asked=1#ask", status_code=303)
    if fields.get("website"):  # a field people do not see: only robots fill it in
        return done

    def work(session):
        questions.ask_on_site(
            session,
            request.app.state.settings,
            incident=incidents.by_slug(session, slug),
            text=text,
            language=language,
            client=client_address(request),
        )

    try:
        await request.app.state.db.run(work)
    except DomainError as problem:
        refused = remember_language(
            request, await _incident(request, slug, question=text, problem=problem)
        )
        if retry_after := getattr(problem, "retry_after", None):
            refused.headers["Retry-After"] = str(retry_after)
        return refused
    return done


def wants_page(request: Request) -> bool:
    """A resident's browser on the public site (not the API, a webhook or a file)."""
    path = request.url.path
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not path.startswith(("/api/", "/webhooks/", "/media/", "/static/", "/console"))
    )


def error_page(request: Request, status_code: int, message: str, values: dict | None = None):
    return render(
        request,
        "error.html",
        status_code=status_code,
        code=status_code,
        message=message,
        values=values or {},
    )


def _public_media(session, updates) -> dict:
    """The photos and videos of the updates that show them to everyone."""
    return media.for_updates(session, [u.id for u in updates if media.is_public(u)])


@router.get("/incidents/{slug}/events")
async def incident_events(request: Request, slug: Slug):
    """Server-Sent Events: each newly published update as a ready-to-insert HTML fragment,
    rendered once for all who follow the incident in that language."""
    app, language = request.app, i18n.language_of(request)
    hub = live.hub_of(
        app.state.db, lambda slug, update_id, languages: _cards(app, slug, update_id, languages)
    )
    last_seen = request.headers.get("last-event-id", "")
    missed = (lambda: _missed(app, slug, int(last_seen), language)) if last_seen.isdigit() else None
    # sse-starlette writes the bytes as they are, pings, and ends the stream when the server stops
    events = live.stream(hub, slug, language, missed)
    return EventSourceResponse(events, ping=live.KEEPALIVE_SECONDS)


async def _cards(app, slug: str, update_id: int | None, languages: set[str]):
    """Per language, what open pages need after an event: the update's cards (``_live_html``),
    or without an update the top of the page alone (the pinned instruction changed)."""

    def work(session):
        if update_id is None:
            incident = incidents.by_slug(session, slug)
            updates = timeline.for_incident(session, incident.id, viewer=None)
            return None, {}, {}, incident, _heads(session, incident, updates)
        update = session.get(Update, update_id)
        if update is None or not update.public or update.state != UpdateState.published:
            return None
        updates = timeline.for_incident(session, update.incident_id, viewer=None)
        by_id = {u.id: u for u in updates}
        incident = session.get(Incident, update.incident_id)
        media_items = _public_media(session, _with_original(update, by_id))
        return update, by_id, media_items, incident, _heads(session, incident, updates)

    found = await app.state.db.run(work, write=False)
    if found is None:
        return None
    update, by_id, items, incident, heads = found
    return {
        language: _live_html(language, update, by_id, items, incident, heads)
        for language in languages
    }


def _with_original(update: Update, by_id: dict) -> list[Update]:
    original = by_id.get(update.supersedes_id) if update.supersedes_id else None
    return [update] + ([original] if original is not None else [])


def _live_html(
    language: str, update: Update | None, by_id: dict, items: dict, incident, heads: dict
) -> str:
    """What an open page needs after ``update``: its card, the card of the update it corrects or
    retracts (struck through now), and the top of the page as it stands: the pinned
    instruction, the promise of the next update and when the page last changed."""
    cards = [
        fragment("_update.html", language, u=u, by_id=by_id, media=items)
        for u in (_with_original(update, by_id) if update is not None else [])
    ]
    top = [
        fragment("_instruction.html", language, incident=incident, **heads),
        fragment("_promise.html", language, incident=incident, now=utcnow()),
        fragment("_last_updated.html", language, **heads),
    ]
    return "\n".join([*cards, *top])


async def _missed(app, slug: str, last_seen: int, language: str) -> list[tuple[int | None, str]]:
    """The cards published after the update a reconnecting browser saw last, oldest first (or
    just the top of the page as it stands: the instruction may have changed meanwhile)."""

    def work(session):
        seen = session.get(Update, last_seen)
        if seen is None or seen.published_at is None:
            return None
        updates = timeline.for_incident(session, seen.incident_id, viewer=None)
        incident = session.get(Incident, seen.incident_id)
        if incident is None or incident.slug != slug:
            return None
        later = [
            u
            for u in updates
            if u.state == UpdateState.published and u.published_at > seen.published_at
        ]
        by_id = {u.id: u for u in updates}
        shown = [x for u in later for x in _with_original(u, by_id)]
        return (
            later,
            by_id,
            _public_media(session, shown),
            incident,
            _heads(session, incident, updates),
        )

    found = await app.state.db.run(work, write=False)
    if found is None:
        return []
    later, by_id, items, incident, heads = found
    later.sort(key=lambda u: (u.published_at, u.id))
    missed: list[tuple[int | None, str]] = [
        (u.id, _live_html(language, u, by_id, items, incident, heads)) for u in later
    ]
    # Each card carries the top of the page as it stands; with no card, it comes on its own.
    return missed or [(None, _live_html(language, None, by_id, items, incident, heads))]


@router.get("/u/{update_id}")
async def short_link(request: Request, update_id: Id):
    def work(session):
        update = session.get(Update, update_id)
        if update is None or not timeline.visible_to(update, None) or update.incident_id is None:
            return None
        return session.get(Incident, update.incident_id).slug

    slug = await _read(request, work)
    if slug is None:
        return HTMLResponse("Not found", status_code=404)
    return RedirectResponse(f"/incidents/{slug}#update-{update_id}", status_code=307)


@router.get("/feed.atom")
async def atom_feed(request: Request):
    return await cached(request, lambda: _atom_document(request))


async def _atom_document(request: Request) -> tuple[bytes, str]:
    settings = request.app.state.settings
    base = settings.public_url.rstrip("/")

    def work(session):
        rows = session.exec(timeline.published_public(with_retracted=True).limit(FEED_SIZE)).all()
        return list(rows)

    rows = await _read(request, work)
    dutch = i18n.translator("nl")
    feed = FeedGenerator()
    feed.id(f"{base}/feed.atom")
    feed.title(xml_safe(f"{settings.municipality}: crisisinformatie"))
    feed.link(href=f"{base}/feed.atom", rel="self")
    feed.link(href=f"{base}/", rel="alternate")
    feed.language("nl")
    feed.author({"name": xml_safe(settings.municipality)})
    feed.updated(rows[0][0].published_at if rows else utcnow())
    for update, incident in reversed(rows):
        entry = feed.add_entry()
        entry.id(f"{base}/u/{update.id}")
        label = dutch(i18n.KIND[update.kind] or i18n.SEVERITY[update.severity])
        entry.title(xml_safe(f"{label}: {incident.title}"))
        entry.link(href=f"{base}/incidents/{incident.slug}#update-{update.id}")
        entry.updated(update.published_at)
        entry.published(update.published_at)
        text = update.body.get("nl") or next(iter(update.body.values()))
        if update.state == UpdateState.retracted:
            text = f"[Ingetrokken: {update.reason}] {text}"
        entry.content(xml_safe(text), type="text")
    return feed.atom_str(pretty=True), "application/atom+xml"


@router.get("/subscribe", response_class=HTMLResponse)
async def subscribe_page(request: Request):
    """Every way to get the updates: Telegram, SMS (with a code), the Atom feed and CAP."""
    return await _subscribe(request)


async def _subscribe(request: Request, *, status_code: int = 200, **sms) -> HTMLResponse:
    def work(session):
        villages = [area for area in areas.all_areas(session) if area.postcodes]
        return villages, incidents.listing(session, include_resolved=False)

    villages, active = await _read(request, work)
    channels = request.app.state.channels
    return render(
        request,
        "subscribe.html",
        status_code=status_code,
        link_ways=_link_ways(channels.active.values(), villages),
        sms=signup.available(request.app.state.settings, channels),
        text_in=text_to_subscribe(channels.active.values()),
        example_postcode=villages[0].postcodes[0] if villages else "",
        banner=active,
        **({"sms_step": "start"} | sms),
    )


@dataclass(frozen=True)
class LinkWay:
    """A channel residents join by opening a link: one for the municipality, one per village."""

    title: str
    whole: str
    villages: list[tuple[str, str]]


def _link_ways(active: Iterable[Channel], villages: list) -> list[LinkWay]:
    return [
        LinkWay(
            channel.title or channel.name,
            whole,
            [(area.name, channel.subscribe_link(area.postcodes[0]) or whole) for area in villages],
        )
        for channel in active
        if (whole := channel.subscribe_link()) is not None
    ]


def text_to_subscribe(active: Iterable[Channel]) -> tuple[str, str] | None:
    """The keyword and number residents text to subscribe (the first channel that has one)."""
    return next((way for c in active if (way := c.text_to_subscribe()) is not None), None)


@router.post("/subscribe/sms", response_class=HTMLResponse)
async def sms_signup(request: Request):
    """Step 1 of the double opt-in: a code by SMS to the number given."""
    form = await small_form(request)
    phone, postcode = form.get("phone", "").strip(), form.get("postcode", "").strip()
    language = Language("en" if form.get("language") == "en" else "nl")

    def work(session):
        signup.request_code(
            session,
            settings=request.app.state.settings,
            channels=request.app.state.channels,
            phone=phone,
            client=client_address(request),
            postcode=postcode or None,
            language=language,
        )

    return await _sms_step(request, work, phone=phone, postcode=postcode, step="code")


@router.post("/subscribe/sms/confirm", response_class=HTMLResponse)
async def sms_confirm(request: Request):
    """Step 2: the code proves the number is the resident's own."""
    form = await small_form(request)
    phone, code = form.get("phone", "").strip(), form.get("code", "").strip()

    def work(session):
        result = signup.confirm(
            session,
            settings=request.app.state.settings,
            channels=request.app.state.channels,
            phone=phone,
            code=code,
        )
        return result.problem  # a wrong code is counted, so it is committed, not raised

    return await _sms_step(request, work, phone=phone, step="done")


async def _sms_step(request: Request, work, *, phone: str, step: str, postcode: str = ""):
    if not same_origin(request):
        return HTMLResponse("cross-site request refused", status_code=403)
    try:
        problem = await request.app.state.db.run(work)
    except DomainError as exc:
        problem = exc
    if problem is not None:
        step = "code" if step == "done" else "start"
    return await _subscribe(
        request,
        sms_step=step,
        sms_phone=phone,
        sms_postcode=postcode,
        sms_problem=problem,
        status_code=problem.status_code if problem is not None else 200,
    )
