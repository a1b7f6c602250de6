"""Hostile text at every boundary. What XML cannot carry (control characters, lone surrogates,
U+FFFE) and 100,000-character strings get a clear 422 and are not stored; markup, SQL, bidi
controls, zero-width characters, emoji and combining marks are stored as typed and shown
harmlessly. Afterwards every page, the Atom feed, the CAP index and every CAP alert still parse,
also when older rows already hold what is now refused; and the channel adapters render the
same texts validly for their channel."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import defusedxml.ElementTree as safe_et
import lxml.html
import pytest
from sqlmodel import select

from broadcast.common import XML_UNSAFE, utcnow, xml_safe
from broadcast.incidents.models import Incident
from broadcast.questions import service as questions
from broadcast.questions.models import Question
from broadcast.timeline.models import Update
from broadcast.web import chart
from channels.base import ChannelContext, UpdateView
from channels.mastodon import MastodonChannel, MastodonSettings
from channels.sms import SmsChannel, TwilioSettings
from channels.telegram import TelegramChannel, TelegramSettings
from channels.text import mastodon_length, sms_info, utf16_len
from tests.fakes.twilio import FakeTwilio
from tests.support import (
    auth,
    console_headers,
    console_log_in,
    new_incident,
    post_update,
    sms_config,
    token_for,
)

ORIGIN = "http://testserver"
PASSWORD = "correct horse"  # what tests.support.token_for gives every user

# Stored as typed, shown as text.
HARMLESS = {
    "script": "<script>alert(1)</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "telegram markup": '<b>vet</b> <a href="https://evil.example/">klik</a> &amp;',
    "sql": "'; DROP TABLE updates;--",
    "bidi override": "Dijk \u202eten noorden\u202c open",
    "isolates and zero width": "Mook\u2066 Middelaar\u2069 a\u200bb\ufeff",
    "emoji": "Water 🌊🚨👩🏽‍🚒 stijgt",
    "combining": "e\u0301e\u0308 Z\u0351\u0352\u0353algo",
}
# Refused with 422: what no XML document can carry, and absurd lengths.
REFUSED = {
    "bell": "a\u0007b",
    "nul": "a\u0000b",
    "escape": "\u001b[31mrood",
    "lone surrogate": "a\ud800b",
    "U+FFFE": "a\ufffeb",
    "100,000 characters": "x" * 100_000,
}
FORM_REFUSED = {k: v for k, v in REFUSED.items() if "surrogate" not in k}  # forms are UTF-8


def send_json(client, method: str, path: str, body: dict, headers: dict):
    """JSON with ``\\uXXXX`` escapes, so a lone surrogate reaches the server as JSON allows."""
    return client.request(
        method,
        path,
        content=json.dumps(body).encode(),
        headers=headers | {"Content-Type": "application/json"},
    )


def well_formed(document: bytes | str) -> None:
    safe_et.fromstring(document.encode() if isinstance(document, str) else document)


def check_public_documents(client) -> None:
    """The Atom feed, the CAP index, every CAP alert and every public page: 200 and parseable,
    with no markup from residents' or officers' text left unescaped."""
    feed = client.get("/feed.atom")
    assert feed.status_code == 200, feed.text[:300]
    well_formed(feed.content)
    index = client.get("/cap.atom")
    assert index.status_code == 200
    well_formed(index.content)
    with client.app.state.db.session_scope() as session:
        ids = [u.id for u in session.exec(select(Update))]
        slugs = [i.slug for i in session.exec(select(Incident))]
    for update_id in ids:
        alert = client.get(f"/updates/{update_id}.cap")
        assert alert.status_code in (200, 404)
        if alert.status_code == 200:
            well_formed(alert.content)
    for path in ["/", *(f"/incidents/{slug}" for slug in slugs)]:
        check_html(client.get(path))


def check_html(page) -> None:
    assert page.status_code == 200, page.text[:300]
    assert not XML_UNSAFE.search(page.text)
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "<b>vet</b>" not in page.text
    tree = lxml.html.fromstring(page.text)
    assert not tree.xpath("//*[@onerror]")
    assert not [s for s in tree.xpath("//script") if "alert(1)" in (s.text or "")]
    assert not tree.xpath("//a[@href='https://evil.example/']")
    for svg in re.findall(r"<svg.*?</svg>", page.text, flags=re.S):
        well_formed(svg)


def sign_in(client, name: str) -> dict:
    """A console session on ``client``; the headers a form post needs."""
    response = console_log_in(client, name, PASSWORD)
    assert response.status_code == 303, response.text
    return console_headers(client)


@pytest.fixture
def officer(client) -> str:
    return token_for(client.app, "officer", name="lotte", display_name="Lotte de Wit")


# --- refused at the API ---------------------------------------------------------------------

# Every text field of every API model, as (method, path, body with TEXT where the value goes).
API_FIELDS = {
    "incident title": ("POST", "/api/v1/incidents", {"title": "TEXT", "severity": "info"}),
    "incident area": ("POST", "/api/v1/incidents", {"title": "T", "severity": "info",
                                                     "areas": ["TEXT"]}),
    "update body": ("POST", "/api/v1/incidents/{incident}/updates", {"body": "TEXT"}),
    "update body en": ("POST", "/api/v1/incidents/{incident}/updates",
                       {"body": {"nl": "Het water stijgt.", "en": "TEXT"}}),
    "update language key": ("POST", "/api/v1/incidents/{incident}/updates",
                            {"body": {"TEXT": "Het water stijgt."}}),
    "update channel": ("POST", "/api/v1/incidents/{incident}/updates",
                       {"body": "B", "channels": ["TEXT"]}),
    "correction": ("POST", "/api/v1/updates/{update}/correct", {"body": "TEXT"}),
    "retraction reason": ("POST", "/api/v1/updates/{update}/retract", {"reason": "TEXT"}),
    "rejection reason": ("POST", "/api/v1/updates/{update}/reject", {"reason": "TEXT"}),
    "all-clear": ("POST", "/api/v1/incidents/{incident}/resolve", {"body": "TEXT"}),
    "answer": ("POST", "/api/v1/questions/{question}/answer", {"body": "TEXT"}),
    "subscriber address": ("POST", "/api/v1/subscribers", {"channel": "webhook",
                                                           "address": "TEXT"}),
    "subscriber channel": ("POST", "/api/v1/subscribers", {"channel": "TEXT", "address": "a"}),
    "relay place": ("POST", "/api/v1/updates/{update}/relayed", {"format": "sms",
                                                                 "where": "TEXT"}),
    "relay format": ("POST", "/api/v1/updates/{update}/relayed", {"format": "TEXT"}),
    "feed url": ("POST", "/api/v1/feeds", {"url": "TEXT", "kind": "level",
                                           "interval_seconds": 600}),
    "feed name": ("PATCH", "/api/v1/feeds/{feed}", {"name": "TEXT"}),
    "feed unit": ("PATCH", "/api/v1/feeds/{feed}", {"unit": "TEXT"}),
    "feed pattern": ("PATCH", "/api/v1/feeds/{feed}", {"value_pattern": "TEXT"}),
    "feed json path": ("PATCH", "/api/v1/feeds/{feed}", {"items_path": "TEXT"}),
    "feed rule template": ("PATCH", "/api/v1/feeds/{feed}", {"rules": [
        {"above": 1100, "template": {"nl": "TEXT"}}]}),
    "cap rule area": ("POST", "/api/v1/feeds", {"url": "http://127.0.0.1:9/cap",
        "kind": "cap", "interval_seconds": 600,
        "rules": [{"min_severity": "Severe", "areas": ["TEXT"]}]}),
    "sign-up phone": ("POST", "/api/v1/signup/sms", {"phone": "TEXT"}),
    "sign-up postcode": ("POST", "/api/v1/signup/sms", {"phone": "+31612345678",
                                                        "postcode": "TEXT"}),
    "sign-up code": ("POST", "/api/v1/signup/sms/confirm", {"phone": "+31612345678",
                                                            "code": "TEXT"}),
}  # fmt: skip


def _filled(template, text: str):
    if isinstance(template, dict):
        return {_filled(k, text): _filled(v, text) for k, v in template.items()}
    if isinstance(template, list):
        return [_filled(v, text) for v in template]
    return text if template == "TEXT" else template


def _counts(client) -> tuple[int, ...]:
    from broadcast.feeds.models import FeedSource
    from broadcast.subscribers.models import Subscriber

    with client.app.state.db.session_scope() as session:
        return tuple(
            len(session.exec(select(model)).all())
            for model in (Incident, Update, Question, Subscriber, FeedSource)
        )


def test_the_api_refuses_what_cannot_be_stored_in_every_text_field(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"], draft=True)
    with client.app.state.db.session_scope() as session:
        question = questions.receive(session, channel="web", text="Vraag?").id
    feed = client.post(
        "/api/v1/feeds",
        headers=auth(officer),
        json={"url": "http://127.0.0.1:9/feed", "kind": "level", "interval_seconds": 600},
    )
    assert feed.status_code == 201, feed.text
    ids = {"incident": incident["id"], "update": update["id"], "question": question,
           "feed": feed.json()["id"]}  # fmt: skip
    before = _counts(client)
    for field, (method, path, template) in API_FIELDS.items():
        for name, text in REFUSED.items():
            response = send_json(
                client, method, path.format(**ids), _filled(template, text), auth(officer)
            )
            assert response.status_code == 422, (field, name, response.text[:300])
            detail = response.json()["detail"]  # the model's, or a rule's (checked by the service)
            assert detail[0]["loc"][0] == "body" if isinstance(detail, list) else detail, field
    assert _counts(client) == before
    check_public_documents(client)


def test_text_queries_are_bounded_too(client, officer):
    incident = new_incident(client, officer)
    headers = sign_in(client, "lotte")
    path = f"/console/incidents/{incident['id']}"
    for template in ("x" * 5_000, "a\u0007b"):
        page = client.get(path, params={"template": template}, headers=headers)
        assert page.status_code == 422, page.status_code
    assert client.get(path, params={"template": "geen"}, headers=headers).status_code == 200


# --- stored and shown harmlessly -------------------------------------------------------------


@pytest.fixture
def busy_client(app_factory):
    """Room for one question per corpus entry from the test client's address."""
    from fastapi.testclient import TestClient

    with TestClient(app_factory(site_questions_per_client=100)) as test_client:
        yield test_client


def test_harmless_texts_round_trip_through_api_site_and_console(busy_client):
    client = busy_client
    token = token_for(client.app, "officer", name="lotte", display_name="Lotte de Wit")
    for name, text in HARMLESS.items():
        incident = new_incident(client, token, title=f"{text} {name}"[:200])
        update = post_update(client, token, incident["id"], body={"nl": text, "en": text})
        stored = client.get(f"/api/v1/updates/{update['id']}", headers=auth(token)).json()
        assert stored["body"] == {"nl": text, "en": text}
        asked = client.post(
            f"/incidents/{incident['slug']}/questions",
            data={"question": text},
            headers={"Origin": ORIGIN},
            follow_redirects=False,
        )
        assert asked.status_code == 303, asked.text[:300]
    inbox = client.get("/api/v1/questions", headers=auth(token)).json()
    assert sorted(q["text"] for q in inbox) == sorted(t.strip() for t in HARMLESS.values())
    first = inbox[-1]
    answered = client.post(
        f"/api/v1/questions/{first['id']}/answer",
        headers=auth(token),
        json={"body": HARMLESS["script"], "public": True},
    )
    assert answered.status_code == 201, answered.text
    some = post_update(client, token, first["incident_id"], body="Dijk houdt.")
    corrected = client.post(
        f"/api/v1/updates/{some['id']}/correct",
        headers=auth(token),
        json={"body": HARMLESS["attribute"]},
    )
    assert corrected.status_code == 201
    retracted = client.post(
        f"/api/v1/updates/{corrected.json()['id']}/retract",
        headers=auth(token),
        json={"reason": HARMLESS["telegram markup"]},
    )
    assert retracted.status_code == 201, retracted.text

    feed = safe_et.fromstring(client.get("/feed.atom").content)
    contents = [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}content")]
    for text in HARMLESS.values():
        assert any(text in (c or "") for c in contents), text
    check_public_documents(client)

    headers = sign_in(client, "lotte")
    incident_id = first["incident_id"]
    for path in (
        "/console",
        f"/console/incidents/{incident_id}",
        f"/console/updates/{some['id']}",
        "/console/questions",
        "/console/questions?state=answered",
    ):
        check_html(client.get(path, headers=headers))


def test_console_forms_refuse_what_cannot_be_stored_and_keep_the_rest(client, officer):
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    with client.app.state.db.session_scope() as session:
        question = questions.receive(session, channel="web", text="Vraag?").id
    headers = sign_in(client, "lotte")
    taken = client.post("/console/duty", headers=headers, follow_redirects=False)
    assert taken.status_code == 303  # on duty: the hand-over note is hers to write
    forms = {
        "new incident": ("/console/incidents", {"title": "TEXT", "severity": "info"}),
        "hand-over note": ("/console/duty/note", {"note": "TEXT"}),
        "compose": (f"/console/incidents/{incident['id']}/updates", {"body_nl": "TEXT"}),
        "compose en": (
            f"/console/incidents/{incident['id']}/updates",
            {"body_nl": "Tekst", "body_en": "TEXT"},
        ),
        "relayed": (f"/console/updates/{update['id']}/relayed", {"format": "sms",
                                                                  "place": "TEXT"}),
        "correct": (f"/console/updates/{update['id']}/correct", {"body_nl": "TEXT"}),
        "retract": (f"/console/updates/{update['id']}/retract", {"reason": "TEXT"}),
        # A question asked on the site has no private way back: the answer goes on the timeline.
        "answer": (f"/console/questions/{question}/answer",
                   {"body": "TEXT", "public": "true", "incident_id": str(incident["id"])}),
        "resolve": (f"/console/incidents/{incident['id']}/resolve", {"body_nl": "TEXT"}),
    }  # fmt: skip
    before = _counts(client)
    for form, (path, fields) in forms.items():
        for name, text in FORM_REFUSED.items():
            data = {k: (text if v == "TEXT" else v) for k, v in fields.items()}
            response = client.post(path, data=data, headers=headers, follow_redirects=False)
            assert response.status_code == 422, (form, name, response.status_code)
            assert "text/html" in response.headers["content-type"]
    assert _counts(client) == before

    for form, (path, fields) in forms.items():
        data = {k: (HARMLESS["script"] if v == "TEXT" else v) for k, v in fields.items()}
        response = client.post(path, data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 303, (form, response.text[:300])
        shown = client.get(response.headers["location"], headers=headers)
        assert shown.status_code == 200, (form, response.headers["location"], shown.text[-1500:])
        check_html(shown)
    check_public_documents(client)


def test_the_public_forms_never_fail_on_hostile_text(client, officer):
    incident = new_incident(client, officer)
    site = {"Origin": ORIGIN}
    for name, text in FORM_REFUSED.items():
        asked = client.post(
            f"/incidents/{incident['slug']}/questions", data={"question": text}, headers=site
        )
        assert asked.status_code in (200, 422), (name, asked.status_code)
        check_html(client.get(f"/incidents/{incident['slug']}"))
        signup = client.post("/subscribe/sms", data={"phone": text, "postcode": text}, headers=site)
        # 503: SMS is not configured here; the form says so instead of failing
        assert signup.status_code in (200, 422, 503), (name, signup.status_code)
        assert not XML_UNSAFE.search(signup.text), name
    stored = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert stored and all(not XML_UNSAFE.search(q["text"]) for q in stored)
    assert {q["text"] for q in stored} >= {"ab", "[31mrood"}  # cleaned, not lost


# --- text from outside, and rows from before the check ---------------------------------------


def test_inbound_questions_are_cleaned_not_refused(client):
    """A resident's SMS or Telegram message reaches ``receive`` as sent: it cannot be refused."""
    with client.app.state.db.session_scope() as session:
        question = questions.receive(
            session, channel="sms", text="Is de\u0000 dijk\u0007 veilig?\ud800\ufffe", language="nl"
        )
        session.flush()
        assert question.text == "Is de dijk veilig?"


def test_rows_written_before_the_check_still_give_well_formed_documents(client, officer):
    """The original failure: one control character in a stored body took /feed.atom down."""
    incident = new_incident(client, officer)
    update = post_update(client, officer, incident["id"])
    retracted = post_update(client, officer, incident["id"])
    client.post(
        f"/api/v1/updates/{retracted['id']}/retract", headers=auth(officer), json={"reason": "x"}
    )
    dirty = "Hoog\u0007water\u001b \ufffe\uffff<b>"
    with client.app.state.db.session_scope() as session:
        row = session.get(Update, update["id"])
        row.body = {"nl": dirty, "en": dirty}
        session.add(row)
        gone = session.get(Update, retracted["id"])
        gone.reason = dirty
        session.add(gone)
        session.get(Incident, incident["id"]).title = dirty
    check_public_documents(client)
    feed = safe_et.fromstring(client.get("/feed.atom").content)
    titles = [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}title")]
    assert any(t and "Hoogwater" in t for t in titles)
    alert = safe_et.fromstring(client.get(f"/updates/{update['id']}.cap").content)
    ns = "{urn:oasis:names:tc:emergency:cap:1.2}"
    assert alert.find(f"{ns}info/{ns}description").text == "Hoogwater <b>"


def test_the_chart_is_well_formed_svg_whatever_the_feed_calls_its_station():
    now = utcnow()
    series = chart.Series(
        key="1",
        station="Mook\u0007 <script>alert(1)</script> \ufffe",
        unit="cm\u000b",
        points=[(now - timedelta(hours=h), 1000.0 + h) for h in range(5)],
        thresholds=[1100.0],
    )
    drawn = chart.render(series, language="nl", now=now, days=2)
    well_formed(drawn.svg)
    assert "<script>" not in drawn.svg and "&lt;script&gt;" in drawn.svg


def test_feed_entries_lose_what_xml_cannot_carry():
    from broadcast.feeds.parse.parsing import plain_text

    assert plain_text("Mook\u0007: 12,5 m <b>NAP</b>\ud800") == "Mook: 12,5 m NAP"
    assert xml_safe("tab\tnew\nline\r ok 🌊") == "tab\tnew\nline\r ok 🌊"


# --- the adapters render the same texts validly ----------------------------------------------

TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "s", "a", "code", "pre", "blockquote", "br"}


def _view(text: str) -> UpdateView:
    return UpdateView(
        id=7,
        kind="update",
        severity="warning",
        body={"nl": text, "en": text},
        url="http://127.0.0.1:8000/u/7",
        incident_title=text[:200],
    )


CORPUS = list(HARMLESS.values()) + ["x" * 10_000, "🌊" * 5_000]


@pytest.mark.parametrize("text", CORPUS, ids=lambda t: t[:20])
def test_telegram_renders_valid_html_for_hostile_text(text):
    channel = TelegramChannel(
        TelegramSettings(bot_token="1:x", api_url="http://127.0.0.1:9", channel_id="@gemeente"),
        ChannelContext("http://127.0.0.1:8000"),
    )
    message = channel.render(_view(text), "nl")
    root = safe_et.fromstring(f"<m>{message.text}</m>")  # Telegram's HTML subset is XML-like
    assert utf16_len("".join(root.itertext())) <= 4096  # counted after the markup is parsed
    assert {e.tag for e in root.iter()} - {"m"} <= TELEGRAM_TAGS
    assert not [a for a in root.iter("a") if a.get("href") == "https://evil.example/"]
    assert text[:20] in "".join(root.itertext()) or message.shortened


@pytest.mark.parametrize("text", CORPUS, ids=lambda t: t[:20])
def test_sms_renders_within_its_encoding_and_segments(text):
    channel = SmsChannel(
        TwilioSettings.model_validate(
            {"account_sid": "AC1", "auth_token": "t", "from": "+3197010000000"}
        ),
        ChannelContext("http://127.0.0.1:8000"),
    )
    message = channel.render(_view(text), "nl")
    info = sms_info(message.text)
    assert message.parts == info.segments <= channel.settings.max_segments
    if info.encoding == "UCS-2":
        message.text.encode("utf-16-be")  # every character is encodable
    assert not XML_UNSAFE.search(message.text)


@pytest.mark.parametrize("text", CORPUS, ids=lambda t: t[:20])
def test_mastodon_renders_within_500_characters(text):
    channel = MastodonChannel(
        MastodonSettings.model_validate({"url": "http://127.0.0.1:9", "token": "t"}),
        ChannelContext("http://127.0.0.1:8000"),
    )
    message = channel.render(_view(text), "nl")
    assert mastodon_length(message.text) <= 500
    assert message.text.endswith("http://127.0.0.1:8000/u/7") or not message.shortened


@pytest.mark.parametrize("slug", ["a%00b", "a%07b", "x" * 5_000, "%EF%BF%BE"])
def test_slugs_no_incident_can_have_are_not_found(client, slug):
    """A NUL in a slug used to reach PostgreSQL, which refuses it: 500."""
    for method, path in (
        ("GET", f"/incidents/{slug}"),
        ("GET", f"/incidents/{slug}/events"),
        ("POST", f"/incidents/{slug}/questions"),
    ):
        response = client.request(method, path, headers={"Origin": ORIGIN})
        assert response.status_code == 404, (method, path[:40], response.text[:200])
    page = client.get(f"/incidents/{slug}", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]


@pytest.fixture
def sms_site(app_factory):
    """The site with SMS sign-up on, against the Twilio stand-in."""
    from fastapi.testclient import TestClient

    from channels.platform import PlatformChannel

    with FakeTwilio() as twilio:
        app = app_factory(
            channel_classes=[PlatformChannel, SmsChannel], channels={"sms": sms_config(twilio)}
        )
        with TestClient(app) as client:
            yield client


def test_the_sms_sign_up_form_never_fails_on_hostile_text(sms_site):
    client = sms_site
    site = {"Origin": ORIGIN}
    for name, text in FORM_REFUSED.items():
        for path, data in (
            ("/subscribe/sms", {"phone": "06 12345678", "postcode": text}),
            ("/subscribe/sms", {"phone": text, "postcode": "6584"}),
            ("/subscribe/sms/confirm", {"phone": text, "code": text}),
        ):
            response = client.post(path, data=data, headers=site)
            assert response.status_code in (200, 422, 429), (name, path, response.status_code)
            assert not XML_UNSAFE.search(response.text), (name, path)
    sent = client.post("/subscribe/sms", data={"phone": "06 87654321"}, headers=site)
    assert sent.status_code == 200 and 'name="code"' in sent.text  # the form really works here


def test_alt_texts_of_uploads_lose_what_xml_cannot_carry(client, officer):
    from tests.media.conftest import image_bytes, upload

    incident = new_incident(client, officer)
    draft = post_update(client, officer, incident["id"], draft=True)
    alt = "Kerk\u0000straat\u0007 <script>alert(1)</script>"
    added = upload(client, officer, draft["id"], image_bytes("JPEG"), alt=alt, alt_en="\u0007")
    assert added.status_code == 201, added.text
    assert added.json()["alt"] == {"nl": "Kerkstraat <script>alert(1)</script>"}


def test_an_sms_question_with_control_characters_reaches_the_inbox_cleaned(app_factory):
    """The whole way in: Twilio's signed webhook, the adapter, the hooks, ``receive``."""
    from fastapi.testclient import TestClient

    from channels.platform import PlatformChannel
    from tests.support import PROXIED, reply

    with FakeTwilio() as twilio:
        app = app_factory(
            public_url=PROXIED,
            dispatch=False,
            channel_classes=[PlatformChannel, SmsChannel],
            channels={"sms": sms_config(twilio)},
        )
        with TestClient(app) as client:
            answer = reply(client, twilio, "Is de\u0000 dijk\u0007 veilig? <b>nu</b>")
            assert answer.status_code == 200, answer.text
            officer = token_for(app, "officer", name="lotte")
            inbox = client.get("/api/v1/questions", headers=auth(officer)).json()
    assert [q["text"] for q in inbox] == ["Is de dijk veilig? <b>nu</b>"]
