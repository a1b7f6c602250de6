"""The e-mail channel against a real SMTP server in-process (tests/fakes/smtp.py): what a
resident receives, how SMTP answers are classified, connection reuse, and, through the whole
service, the one-click unsubscribe (RFC 8058) and corrections that thread under the original."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from broadcast.delivery.adapters import configure
from broadcast.settings import Settings
from broadcast.subscribers.models import Subscriber, SubscriberState
from channels.base import ChannelContext, Media, Target, UpdateView
from channels.email import EmailChannel
from channels.email.classify import stated_wait
from channels.errors import TARGET, NotConfigured, RecipientGone, RetryLater
from channels.platform import PlatformChannel
from tests.fakes.smtp import SERVER_WAIT, FakeSmtp, FixedKeySigner
from tests.support import auth, new_incident, post_update, token_for, wait_for

PUBLIC = "https://crisis.gemeente.example"
FROM = "Gemeente Mook <crisis@gemeente.example>"
RESIDENT = "bewoner@example.nl"


def view(body: str = "Het water stijgt; zandzakken bij de brandweer.", **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "warning", "body": {"nl": body}}
    fields |= {"url": f"{PUBLIC}/u/7", "incident_title": "Hoogwater Maas"}
    return UpdateView(**fields | changes)


def channel(smtp: FakeSmtp, **settings) -> EmailChannel:
    values = {"url": smtp.url, "mail_from": FROM, "timeout_seconds": 10} | settings
    context = ChannelContext(public_url=PUBLIC, signer=FixedKeySigner())
    return EmailChannel(EmailChannel.Settings.model_validate(values), context)


@pytest.fixture
def smtp():
    with FakeSmtp() as server:
        yield server


# --- settings -------------------------------------------------------------------------------


def test_the_contract_environment_variables_configure_the_channel(monkeypatch):
    monkeypatch.setenv("BROADCAST_SMTP_URL", "smtps://user%40x:p%3Ass@mail.example:2465")
    monkeypatch.setenv("BROADCAST_MAIL_FROM", FROM)
    monkeypatch.setenv("BROADCAST_SMTP_PER_SECOND", "3")
    email = configure(EmailChannel, Settings(), ChannelContext(public_url=PUBLIC))
    assert (email.host, email.port, email.implicit_tls) == ("mail.example", 2465, True)
    assert (email.username, email.password) == ("user@x", "p:ss")
    assert email.sender.addr_spec == "crisis@gemeente.example"
    assert email.limits.per_second == 3.0


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"url": "smtp://127.0.0.1:25"},
        {"mail_from": FROM},
        {"url": "http://x", "mail_from": FROM},
    ],
)
def test_without_a_server_and_a_sender_the_channel_stays_off(values):
    with pytest.raises(NotConfigured):
        EmailChannel(EmailChannel.Settings.model_validate(values), ChannelContext(PUBLIC))


def test_addresses_are_checked_and_their_domain_lowercased(smtp):
    email = channel(smtp)
    assert email.normalize_address(" Bewoner@Example.NL ") == "Bewoner@example.nl"
    for wrong in ("bewoner", "@example.nl", "a b@example.nl", "bewoner@localhost"):
        with pytest.raises(ValueError):
            email.normalize_address(wrong)


# --- what residents receive ----------------------------------------------------------------


async def test_an_update_mail_has_both_parts_the_links_and_the_headers(smtp):
    email = channel(smtp)
    update = view(
        credit="Jan de Vries",
        next_update_due=datetime.now(UTC) + timedelta(hours=1),
        media=(Media(f"{PUBLIC}/media/1.jpg", "image/jpeg", "Dijk bij Mook"),),
    )
    receipt = await email.send(email.render(update, "nl"), Target(RESIDENT, delivery_id=3))
    mail = smtp.state.last()
    assert receipt.provider_id == mail["Message-ID"] and mail["Date"]
    assert mail["Subject"] == "Waarschuwing – Hoogwater Maas"
    assert mail["From"] == FROM and mail["To"] == RESIDENT
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC}/email/unsubscribe/") and unsubscribe.endswith(">")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for part in (text, html):
        assert "Het water stijgt" in part and f"{PUBLIC}/u/7" in part
        assert "Met dank aan Jan de Vries" in part and "Volgende update verwacht" in part
        assert f"{PUBLIC}/media/1.jpg" in part and unsubscribe[1:-1] in part
    assert not any(p.get_content_disposition() == "attachment" for p in mail.walk())
    assert smtp.state.envelopes[-1] == ("crisis@gemeente.example", [RESIDENT])


async def test_an_exercise_says_so_in_the_subject_and_english_is_available(smtp):
    email = channel(smtp)
    update = view(exercise=True)
    update = UpdateView(**{**update.__dict__, "body": {"nl": "Oefening.", "en": "Exercise."}})
    await email.send(email.render(update, "en"), Target(RESIDENT, delivery_id=1))
    mail = smtp.state.last()
    assert mail["Subject"] == "[EXERCISE] Warning – Hoogwater Maas"
    assert "Exercise." in mail.get_body(("plain",)).get_content()
    nl = email.render(view(exercise=True), "nl")
    assert nl.data["subject"].startswith("[OEFENING] ")


async def test_a_correction_refers_to_the_original_message_so_it_threads(smtp):
    email = channel(smtp)
    first = await email.send(email.render(view(), "nl"), Target(RESIDENT, delivery_id=1))
    correction = view("Piek pas zaterdag.", id=8, kind="correction", supersedes=7)
    target = Target(RESIDENT, delivery_id=2, original_message_id=first.provider_id)
    await email.send(email.render(correction, "nl"), target)
    mail = smtp.state.last()
    assert mail["In-Reply-To"] == first.provider_id == mail["References"]
    assert mail["Subject"].startswith("Correctie: ")


async def test_a_direct_message_has_its_subject_and_no_unsubscribe_header(smtp):
    from channels.base import Message

    email = channel(smtp)
    message = Message(update_id=None, language="nl", text="Bevestig uw aanmelding.")
    await email.send(
        message.__class__(**{**message.__dict__, "data": {"subject": "Aanmelden"}}),
        Target(RESIDENT, delivery_id=1),
    )
    mail = smtp.state.last()
    assert mail["Subject"] == "Aanmelden" and mail["List-Unsubscribe"] is None


# --- SMTP answers ---------------------------------------------------------------------------


async def test_a_server_that_refuses_for_a_while_is_retried_with_its_wait(smtp):
    email = channel(smtp)
    smtp.state.server_busy = 1  # 421 "try again in 30 seconds", then fine
    message = email.render(view(), "nl")
    with pytest.raises(RetryLater) as refused:
        await email.send(message, Target(RESIDENT, delivery_id=1))
    assert refused.value.retry_after == SERVER_WAIT and refused.value.scope == "channel"
    receipt = await email.send(message, Target(RESIDENT, delivery_id=1))
    assert receipt.provider_id == smtp.state.last()["Message-ID"]


async def test_a_greylisting_mailbox_waits_alone_and_a_missing_one_is_gone(smtp):
    email = channel(smtp)
    smtp.state.busy["wacht@example.nl"] = 1
    smtp.state.gone.add("weg@example.nl")
    message = email.render(view(), "nl")
    with pytest.raises(RetryLater) as busy:
        await email.send(message, Target("wacht@example.nl", delivery_id=1))
    assert busy.value.scope == TARGET and busy.value.retry_after == 120
    with pytest.raises(RecipientGone) as gone:
        await email.send(message, Target("weg@example.nl", delivery_id=2))
    assert "weg@" not in str(gone.value)  # reasons never name the mailbox
    await email.send(message, Target(RESIDENT, delivery_id=3))  # the others carry on
    assert [to for _, to in smtp.state.envelopes] == [[RESIDENT]]


async def test_a_server_that_is_down_is_retry_later_until_it_is_back(smtp):
    email = channel(smtp)
    message = email.render(view(), "nl")
    await email.send(message, Target(RESIDENT, delivery_id=1))
    smtp.stop()  # connection refused, and the kept connection is dead
    with pytest.raises(RetryLater):
        await email.send(message, Target(RESIDENT, delivery_id=2))
    with pytest.raises(RetryLater):
        await email.send(message, Target(RESIDENT, delivery_id=3))
    smtp.start()
    await email.send(message, Target(RESIDENT, delivery_id=4))
    assert len(smtp.state.messages) == 2
    await email.close()


async def test_a_connection_carries_at_most_per_connection_messages(smtp):
    email = channel(smtp, per_connection=2)
    message = email.render(view(), "nl")
    for delivery in range(5):
        await email.send(message, Target(RESIDENT, delivery_id=delivery))
    await email.close()
    assert len(smtp.state.messages) == 5 and smtp.state.sessions == 3


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("try again in 30 seconds", 30), ("retry in 5 minutes", 300), ("4.7.0 busy", None)],
)
def test_the_wait_a_server_states_is_read(text, seconds):
    assert stated_wait(text) == seconds


# --- through the service --------------------------------------------------------------------


@pytest.fixture
def service(app_factory, smtp):
    app = app_factory(
        public_url=PUBLIC,
        channel_classes=[PlatformChannel, EmailChannel],
        channels={"email": {"url": smtp.url, "mail_from": FROM, "timeout_seconds": 10}},
    )
    with TestClient(app) as client:
        client.officer = token_for(app, "officer")
        yield client


def state_of(client, address: str) -> SubscriberState | None:
    with client.app.state.db.session_scope() as session:
        query = select(Subscriber).where(
            Subscriber.channel == "email", Subscriber.address == address
        )
        found = session.exec(query).first()
        return found.state if found else None


def test_one_click_unsubscribes_and_a_correction_threads_under_the_original(service, smtp):
    body = {"channel": "email", "address": RESIDENT, "areas": []}
    response = service.post("/api/v1/subscribers", json=body, headers=auth(service.officer))
    assert response.status_code == 201, response.text
    incident = new_incident(service, service.officer)
    update = post_update(service, service.officer, incident["id"])
    wait_for(lambda: len(smtp.state.messages) == 1)
    original = smtp.state.last()
    corrected = service.post(
        f"/api/v1/updates/{update['id']}/correct",
        json={"body": "Het water daalt."},
        headers=auth(service.officer),
    )
    assert corrected.status_code == 201, corrected.text
    wait_for(lambda: len(smtp.state.messages) == 2)
    assert smtp.state.last()["In-Reply-To"] == original["Message-ID"]

    link = original["List-Unsubscribe"][1:-1].removeprefix(PUBLIC)
    page = service.get(link)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and 'method="post"' in page.text
    assert state_of(service, RESIDENT) == SubscriberState.active
    forged = service.post(link[:-4] + "0000", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404
    done = service.post(link, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "afgemeld" in done.text
    assert state_of(service, RESIDENT) == SubscriberState.unsubscribed
