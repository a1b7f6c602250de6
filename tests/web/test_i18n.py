"""The Dutch catalogue covers every message the code and the templates show."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from broadcast.i18n import translator
from tests.support import (
    auth,
    csrf_of,
    log_in,
    new_incident,
    post_form,
    post_update,
    token_for,
)

ROOT = Path(__file__).resolve().parents[2]
METHODS = [("broadcast/**.py", "python"), ("broadcast/web/templates/**.html", "jinja2")]


def extracted() -> set[str]:
    """Every message id; of a plural message (``ngettext``) its singular."""
    found = extract_from_dir(ROOT, METHODS, keywords={"_": None, "ngettext": (1, 2)})
    messages = {m[0] if isinstance(m, tuple) else m for _, _, m, _, _ in found}
    return {message for message in messages if isinstance(message, str) and message}


def test_every_message_has_a_dutch_translation():
    path = ROOT / "broadcast/web/locale/nl/LC_MESSAGES/messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale="nl")
    translated = {
        m.id[0] if isinstance(m.id, tuple) else m.id
        for m in catalog
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.id, tuple) else m.string)
    }
    missing = sorted(extracted() - translated)
    assert len(extracted()) > 100  # the extraction itself works
    assert missing == [], "run the steps in docs/i18n.md to update the catalogue"


def test_numbers_take_the_plural_form_of_the_language():
    from broadcast.i18n import plural_translator

    dutch, english = plural_translator("nl"), plural_translator("en")
    one, many = "question waiting for an answer", "questions waiting for an answer"
    assert dutch(one, many, 1) == "vraag wacht op antwoord"
    assert dutch(one, many, 2) == "vragen wachten op antwoord"
    assert dutch(one, many, 0) == "vragen wachten op antwoord"
    assert english(one, many, 1) == one and english(one, many, 3) == many
    polls = ("%(num)s poll in a row", "%(num)s polls in a row")
    assert english(*polls, 1) == "1 poll in a row" and english(*polls, 4) == "4 polls in a row"


def test_named_values_are_filled_in_after_translation():
    assert translator("nl")("promised at %(time)s", time="14:30") == "beloofd om 14:30"
    assert translator("en")("promised at %(time)s", time="14:30") == "promised at 14:30"
    assert translator("xx")("Publish") == "Publiceren"  # unknown languages fall back to Dutch


def test_a_refused_console_action_is_explained_in_dutch_and_the_api_keeps_english(client):
    officer = token_for(client.app, "officer", name="lotte")
    assert log_in(client, "lotte").status_code == 303
    incident = new_incident(client, officer)
    original = post_update(client, officer, incident["id"], body="De N271 is dicht.")
    fixed = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "De N271 is open."},
        headers=auth(officer),
    )
    assert fixed.status_code == 201, fixed.text
    correction = fixed.json()["id"]

    # Correcting the original again is refused: the console says why, in Dutch, with the numbers.
    refused = post_form(
        client,
        f"/console/updates/{original['id']}/correct",
        {"body_nl": "De N271 is weer dicht."},
        csrf=csrf_of(client),
    )
    assert refused.status_code == 303
    page = client.get(refused.headers["location"]).text
    dutch = (
        f"bericht {original['id']} is al vervangen door bericht {correction}; corrigeer dat bericht"
    )
    assert dutch in page and 'role="alert"' in page
    assert "already superseded" not in page

    # The JSON API answers the same refusal in English, filled in exactly as before.
    again = client.post(
        f"/api/v1/updates/{original['id']}/correct",
        json={"body": "De N271 is weer dicht."},
        headers=auth(officer),
    )
    assert again.status_code == 409
    english = f"update {original['id']} was already superseded by {correction}; correct that one"
    assert again.json() == {"detail": english}


def test_a_console_page_that_cannot_be_shown_says_why_in_dutch(client):
    token_for(client.app, "officer", name="lotte")
    assert log_in(client, "lotte").status_code == 303
    page = client.get("/console/incidents/999")
    assert page.status_code == 404
    assert "incident 999 niet gevonden" in page.text and "not found" not in page.text


def test_a_promised_time_names_the_day_unless_it_is_today():
    from datetime import UTC, datetime

    from broadcast.i18n import moment

    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 21:00 in Mook
    tonight = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    tomorrow = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    after_midnight = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 00:30 on the 24th in Mook
    assert moment(tonight, "nl", now) == "23:30"
    assert moment(tomorrow, "nl", now) == "dinsdag 24 november 09:00"
    assert moment(tomorrow, "en", now) == "Tuesday 24 November 09:00"
    assert moment(after_midnight, "nl", now) == "dinsdag 24 november 00:30"
