"""The questions inbox: residents ask on any channel; officers answer privately or publicly."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from broadcast import audit, keys, paging, ratelimit
from broadcast.areas import service as areas
from broadcast.auth.models import User
from broadcast.common import DEFAULT_LANGUAGE, Language, Severity, stored_id, utcnow, xml_safe
from broadcast.db import emit
from broadcast.delivery.adapters import ChannelSet
from broadcast.errors import Conflict, Invalid, NotFound, TooManyRequests
from broadcast.fanout import audience
from broadcast.i18n import _
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident, IncidentStatus
from broadcast.questions.models import Question, QuestionState
from broadcast.ratelimit import Limit
from broadcast.settings import Settings
from broadcast.subscribers import service as subscribers
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Source, Update, UpdateKind, UpdateState

MAX_QUESTION_CHARS = 2_000
MAX_SITE_QUESTION_CHARS = 1_000
SITE = "web"  # the channel name of questions asked on the public site
SITE_CLIENT, SITE_ALL = "question-client", "question-site"  # the rate limits' kinds
HOUR = timedelta(hours=1)
PRIVATE_IMPOSSIBLE = _(
    "Question %(id)s cannot be answered privately: channel %(channel)s is off or has no reply "
    "address. Publish the answer on the timeline instead."
)


def receive(
    session: Session,
    *,
    channel: str,
    text: str,
    address: str | None = None,
    language: str | None = None,
    incident_id: int | None = None,
    reply_to: str | None = None,
    inbound_key: str | None = None,
) -> Question:
    text = xml_safe(text).strip()  # a resident's message cannot be refused, only cleaned
    if not text:
        raise Invalid(_("an empty question"))
    question = Question(
        channel=channel,
        address=address,
        text=text[:MAX_QUESTION_CHARS],
        language=Language(language or DEFAULT_LANGUAGE),
        incident_id=incident_id,
        reply_to=reply_to,
        inbound_key=inbound_key,
    )
    session.add(question)
    session.flush()
    audit.record(
        session,
        actor="resident",
        action="question.receive",
        subject=f"question:{question.id}",
        channel=channel,
    )
    return question


def ask_on_site(
    session: Session,
    settings: Settings,
    *,
    incident: Incident,
    text: str,
    language: str,
    client: str,
) -> Question:
    """A question from the incident's public page. It has no reply address, so its answer is
    published on the timeline. Limited per client address and in total, against flooding."""
    text = text.strip()
    if len(text) > MAX_SITE_QUESTION_CHARS:
        raise Invalid(
            _("the question is longer than %(limit)s characters"), limit=MAX_SITE_QUESTION_CHARS
        )
    if incident.status == IncidentStatus.resolved:
        raise Conflict(_("this incident is over; questions are no longer taken here"))
    secret = keys.secret_key(session, settings)
    limits = [
        (
            Limit(SITE_CLIENT, settings.site_questions_per_client, HOUR),
            ratelimit.key(secret, client),
        ),
        (
            Limit(SITE_ALL, settings.site_questions_per_hour, HOUR),
            ratelimit.key(secret, "everyone"),
        ),
    ]
    if seconds := max(ratelimit.wait(session, limit, key) for limit, key in limits):
        raise TooManyRequests(
            _("too many questions at once; please try again later"), retry_after=seconds
        )
    for limit, key in limits:
        ratelimit.record(session, limit.kind, key)
    return receive(session, channel=SITE, text=text, language=language, incident_id=incident.id)


def incident_for(session: Session, channel: str, address: str | None) -> int | None:
    """The incident a resident's question is about: the newest open one that covers the area
    the resident subscribed for (an incident without areas covers everyone). Never an exercise,
    unless the resident is in the test audience. Without a known area, the one open incident if
    there is exactly one; otherwise none, and an officer attaches it."""
    resident = subscribers.find(session, channel, address) if address else None
    tester = resident is not None and resident.tester
    query = select(Incident).where(Incident.status != IncidentStatus.resolved)
    if not tester:
        query = query.where(col(Incident.exercise).is_(False))
    candidates = list(session.exec(query.order_by(col(Incident.id).desc())))
    codes = subscribers.area_codes(session, stored_id(resident)) if resident else []
    if codes:
        theirs = set(areas.related(session, codes))
        covering = [i for i in candidates if not i.areas or theirs & set(i.areas)]
        return stored_id(covering[0]) if covering else None
    return stored_id(candidates[0]) if len(candidates) == 1 else None


def move(
    session: Session, question: Question, *, officer: User, incident_id: int | None
) -> Question:
    """An officer attaches a question to another incident (or to none)."""
    if incident_id is not None:
        incidents.get(session, incident_id)
    before, question.incident_id = question.incident_id, incident_id
    session.add(question)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="question.move",
        subject=f"question:{question.id}",
        incident=incident_id,
        was=before,
    )
    return question


def from_inbound(session: Session, channel: str, inbound_key: str) -> Question | None:
    """The question a provider's message made already, if any."""
    query = select(Question).where(Question.channel == channel, Question.inbound_key == inbound_key)
    return session.exec(query).first()


def waiting(session: Session) -> tuple[int, datetime | None]:
    """How many questions wait for an answer, and since when the oldest has."""
    query = select(func.count(), func.min(Question.received_at))
    count, oldest = session.exec(query.where(Question.state == QuestionState.new)).one()
    return count, oldest


def listing(
    session: Session,
    *,
    state: QuestionState | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> list[Question]:
    """Newest first; ``before``/``limit``: one page (see ``broadcast.paging``)."""
    query = paging.keyset(select(Question), Question.id, before=before, limit=limit)
    if state is not None:
        query = query.where(Question.state == state)
    return list(session.exec(query))


def get(session: Session, question_id: int) -> Question:
    question = session.get(Question, question_id)
    if question is None:
        raise NotFound(_("question %(id)s not found"), id=question_id)
    return question


def can_answer_privately(question: Question, channels: ChannelSet) -> bool:
    """Whether a private answer can go back to the resident: a reply address on a running
    channel."""
    return bool(question.address) and question.channel in channels


def answer(
    session: Session,
    question: Question,
    *,
    officer: User,
    body: str,
    public: bool,
    channels: ChannelSet,
    incident_id: int | None = None,
) -> Update:
    """Answer privately through the channel it came in on, or publish a Q&A entry on the
    timeline (on the public site; the resident who asked gets the answer privately too)."""
    if question.state == QuestionState.answered:
        raise Conflict(_("question %(id)s is answered already"), id=question.id)
    if not body.strip():
        raise Invalid(_("the answer must not be empty"))
    if public:
        update = _publish_answer(
            session,
            question,
            officer=officer,
            body=body,
            channels=channels,
            incident_id=incident_id,
        )
    else:
        update = _private_answer(session, question, officer=officer, body=body)
    if can_answer_privately(question, channels):
        audience.queue_one(
            session,
            update,
            question.channel,
            question_id=stored_id(question),
            language=question.language,
        )
        emit(session, "queued", update_id=update.id)
    elif not public:
        raise Conflict(PRIVATE_IMPOSSIBLE, id=question.id, channel=question.channel)
    question.state, question.answer = QuestionState.answered, body.strip()
    question.answered_at, question.answered_by = utcnow(), officer.id
    question.answer_update_id = update.id
    session.add(question)
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action="question.answer",
        subject=f"question:{question.id}",
        public=public,
    )
    return update


def _publish_answer(
    session: Session,
    question: Question,
    *,
    officer: User,
    body: str,
    channels: ChannelSet,
    incident_id: int | None,
) -> Update:
    incident_id = incident_id or question.incident_id
    if incident_id is None:
        raise Invalid(_("a public answer needs an incident_id (the question has none)"))
    incident = incidents.get(session, incident_id)
    qa = {question.language.value: f"{question.text}\n\n{body.strip()}"}
    return timeline.post(
        session,
        incident,
        author=officer,
        body=qa,
        channels=channels,
        kind=UpdateKind.answer,
        severity=Severity.info,
        channel_names=["platform"],
        areas_=[],
    )


def _private_answer(session: Session, question: Question, *, officer: User, body: str) -> Update:
    update = Update(
        incident_id=question.incident_id,
        kind=UpdateKind.answer,
        state=UpdateState.published,
        public=False,
        severity=Severity.info,
        body={question.language.value: body.strip()},
        author_id=officer.id,
        source=Source.officer,
        published_at=utcnow(),
    )
    session.add(update)
    session.flush()
    return update
