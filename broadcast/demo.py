"""``broadcast demo``: a Maas flood, as the municipality of Mook en Middelaar lived it in July
2021, replayed relative to now, so that a newcomer sees a living timeline at once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from broadcast.auth import service as auth
from broadcast.auth.models import Role, User
from broadcast.common import Language, utcnow
from broadcast.delivery.adapters import ChannelSet
from broadcast.feeds import service as feeds
from broadcast.feeds.models import FeedReading
from broadcast.incidents import service as incidents
from broadcast.incidents.models import Incident
from broadcast.questions import service as questions
from broadcast.runtime import assemble, prepare_database
from broadcast.settings import Settings
from broadcast.subscribers.models import Subscriber, SubscriberArea
from broadcast.timeline import service as timeline

TITLE = "Hoogwater Maas"
VILLAGES = ["mook", "middelaar", "molenhoek", "plasmolen"]

# (hours ago, body nl, body en, severity, areas)
STORY = [
    (
        30,
        "Rijkswaterstaat verwacht de komende dagen hoge waterstanden op de Maas. Bij Mook wordt "
        "de piek vrijdagochtend verwacht. Er is nu geen gevaar; we houden u op de hoogte.",
        "Rijkswaterstaat expects high water levels on the Maas in the coming days. "
        "The peak at Mook "
        "is expected on Friday morning. There is no danger now; we will keep you informed.",
        "advisory",
        VILLAGES,
    ),
    (
        20,
        "Zandzakken liggen klaar bij de brandweerkazerne in Mook (Groesbeekseweg). Neem zelf een "
        "schop mee. Vrijwilligers helpen ouderen in Middelaar en Plasmolen.",
        "Sandbags are available at the fire station in Mook (Groesbeekseweg). Bring a shovel. "
        "Volunteers are helping elderly residents in Middelaar and Plasmolen.",
        "warning",
        VILLAGES,
    ),
    (
        8,
        "De piek wordt vrijdag rond 06:00 verwacht bij Mook: 15,10 m NAP. De Kerkstraat in "
        "Middelaar is afgesloten. Parkeer niet op de dijk.",
        "The peak is expected at Mook on Friday around 06:00: 15.10 m NAP. Kerkstraat in Middelaar "
        "is closed. Do not park on the dike.",
        "warning",
        ["middelaar", "mook"],
    ),
    (
        3,
        "Bewoners van de Maasstraat in Plasmolen wordt gevraagd hun woning vanavond voor 20:00 te "
        "verlaten. Opvang in sporthal De Heikant, Molenhoek.",
        "Residents of Maasstraat in Plasmolen are asked to leave their homes tonight before 20:00. "
        "Shelter at sports hall De Heikant, Molenhoek.",
        "emergency",
        ["plasmolen"],
    ),
]
CORRECTION = (
    "De opvang is in Gemeenschapshuis De Hoeve in Molenhoek, niet in "
    "sporthal De Heikant. Bewoners van de Maasstraat in Plasmolen: verlaat uw woning "
    "vanavond voor 20:00.",
    "The shelter is at community centre De Hoeve in Molenhoek, not at "
    "sports hall De Heikant. Residents of Maasstraat in Plasmolen: leave your home "
    "tonight before 20:00.",
)
SUBSCRIBERS = [
    ("telegram", "100000001", "nl", ["plasmolen"]),
    ("telegram", "100000002", "en", []),
    ("sms", "+31612345001", "nl", ["middelaar"]),
    ("sms", "+31612345002", "nl", ["mook"]),
]  # no webhook subscriber: the demo never sends to a host outside this machine


def seed(settings: Settings, serve_command: str = "broadcast serve") -> str:
    db, channels = assemble(settings)
    prepare_database(db, settings)
    with db.session_scope() as session:
        if session.exec(select(Incident).where(Incident.title == TITLE)).first():
            return (
                f"demo data is present already; run `{serve_command}` and open "
                + settings.public_url
            )
        lines = _seed(session, channels)
    db.dispose()
    return "\n".join([*lines, f"open {settings.public_url} after `{serve_command}`"])


def _seed(session: Session, channels: ChannelSet) -> list[str]:
    officer, officer_token = _user(session, "adviseur", Role.officer, "Communicatieadviseur")
    volunteer, volunteer_token = _user(
        session, "anna", Role.volunteer, "Anna de Vries, buurtverbinder Plasmolen"
    )
    incident = incidents.create(
        session, title=TITLE, severity="advisory", area_codes=VILLAGES, creator=officer
    )
    now = utcnow()
    published = []
    for hours, nl, en, severity, areas in STORY:
        update = timeline.post(
            session,
            incident,
            author=officer,
            body={"nl": nl, "en": en},
            severity=severity,
            areas_=areas,
            channels=channels,
            next_update_due=now - timedelta(hours=hours) + timedelta(hours=4),
        )
        update.published_at = now - timedelta(hours=hours)
        published.append(update)
    correction = timeline.correct(
        session,
        published[-1],
        officer=officer,
        channels=channels,
        body={"nl": CORRECTION[0], "en": CORRECTION[1]},
        next_update_due=now + timedelta(hours=1),
    )
    correction.published_at = now - timedelta(hours=2, minutes=40)
    timeline.post(
        session,
        incident,
        author=volunteer,
        channels=channels,
        areas_=["plasmolen"],
        body="Foto-update: het water staat tot aan de rand van de Maasstraat. De "
        "kade houdt het. Buren helpen elkaar met zandzakken.",
    )
    timeline.post(
        session,
        incident,
        author=officer,
        channels=channels,
        severity="warning",
        publish_at=now + timedelta(minutes=45),
        next_update_due=now + timedelta(hours=3),
        body={
            "nl": "Avondupdate: de waterstand bij Mook is 14,85 m NAP en stijgt "
            "langzamer. Volgende update om 22:00.",
            "en": "Evening update: the level at Mook is 14.85 m NAP and rising more "
            "slowly. Next update at 22:00.",
        },
    )
    incident.next_update_due = now + timedelta(hours=1)
    session.add(incident)
    _subscribers(session)
    _gauge(session, incident, now)
    _venlo(session, incident)
    questions.receive(
        session,
        channel="sms",
        address="+31612345003",
        incident_id=incident.id,
        text="Kan ik mijn auto op het plein bij de kerk in Middelaar laten staan?",
    )
    return [
        f"seeded incident {incident.slug!r} with {len(published) + 1} published updates, "
        "one scheduled update, one proposal waiting for approval and one question",
        f"officer 'adviseur' API token: {officer_token}",
        f"volunteer 'anna' API token: {volunteer_token}",
        "console (/console): adviseur / demo-adviseur (officer), anna / demo-anna (volunteer);"
        " demo passwords: never use the demo data in production",
    ]


def _user(session: Session, name: str, role: Role, display: str) -> tuple[User, str]:
    return auth.add_user(
        session, name=name, role=role, display_name=display, password="demo-" + name
    )


def _subscribers(session: Session) -> None:
    """Residents who subscribed (consent recorded); their channels may be off in the demo."""
    for channel, address, language, areas in SUBSCRIBERS:
        subscriber = Subscriber(
            channel=channel, address=address, language=Language(language), consent_at=utcnow()
        )
        session.add(subscriber)
        session.flush()
        assert subscriber.id is not None  # flushed
        session.add_all(SubscriberArea(subscriber_id=subscriber.id, area_code=a) for a in areas)


RWS_URL = "https://ddapi20-waterwebservices.rijkswaterstaat.nl"


def _venlo(session: Session, incident: Incident) -> None:
    """The real Maas at Venlo from Rijkswaterstaat's WaterWebservices, with an expected-peak
    rule: disabled, so the demo polls nothing; on a machine with internet access one call
    (``PATCH /api/v1/feeds/{id}`` with ``{"enabled": true}``) follows it. The line (14 m NAP,
    in the service's cm) is an example, not Venlo's official one."""
    feeds.create(
        session,
        name="Venlo",
        url=RWS_URL,
        kind="rws",
        location="venlo",
        interval_seconds=600,
        incident_id=incident.id,
        enabled=False,
        rules=[{"forecast_peak_above": 1400, "severity": "warning"}],
        min_interval=60,
    )


def _gauge(session: Session, incident: Incident, now) -> None:
    """The Maas at Mook over the last three days, rising to 14.85 m NAP: the chart on the incident
    page. The source is disabled (its address is an example), so nothing is polled."""
    source = feeds.create(
        session,
        name="Maas bij Mook",
        url="https://gauges.example.nl/maas/mook.rss",
        kind="level",
        interval_seconds=600,
        unit="m NAP",
        incident_id=incident.id,
        enabled=False,
        rules=[{"above": 13.5, "reset_below": 13.3, "severity": "warning"}],
        min_interval=60,
    )
    assert source.id is not None  # feeds.create flushes
    hours = 72
    for hour in range(hours + 1):
        share = hour / hours
        level = 11.2 + 3.65 * share**1.6  # slow at first, then faster: 11.20 to 14.85 m NAP
        session.add(
            FeedReading(
                source_id=source.id,
                key_hash=f"demo-{hour}",
                value=round(level, 2),
                unit="m NAP",
                observed_at=(now - timedelta(hours=hours - hour)).replace(second=0, microsecond=0),
                station="Maas bij Mook",
            )
        )
