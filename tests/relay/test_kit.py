"""The relay kit's texts: each format within its limit, headline, marker, credit and link kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcast.relay.kit import build, to_gsm7
from channels.base import UpdateView
from channels.text import sms_info

LINK = "https://crisis.mookenmiddelaar.nl/u/12"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LONG = (
    "Zandzakken liggen klaar bij de brandweerkazerne aan de Groesbeekseweg. Neem zelf een "
    "schep mee en help de buren die het niet zelf kunnen. "
) * 20


def view(text: str = "Het water stijgt. Zandzakken bij de brandweerkazerne.", **fields):
    values = {
        "id": 12,
        "kind": "update",
        "severity": "warning",
        "url": LINK,
        "incident_title": "Hoogwater Maas",
        "body": {"nl": text, "en": "Water rising."},
    }
    return UpdateView(**(values | fields))


def kit(update: UpdateView, language: str = "nl", **options) -> dict:
    return {t.key: t for t in build(update, language, now=NOW, **options)}


def test_every_format_in_order_with_labels():
    texts = build(view(), "nl", now=NOW)
    assert [(t.key, t.label, t.limit) for t in texts] == [
        ("whatsapp", "WhatsApp-groep", 700),
        ("facebook", "Facebook", 5000),
        ("neighbourhood", "Buurtapp (Nextdoor, BuurtApp)", 280),
        ("sms", "Sms (1 bericht)", 160),
    ]


def test_whatsapp_has_a_bold_headline_and_ends_with_the_link():
    text = kit(view())["whatsapp"].text
    assert text.startswith("*Waarschuwing – Hoogwater Maas*\n\n")
    assert "Het water stijgt. Zandzakken bij de brandweerkazerne." in text
    assert text.endswith("\n\n" + LINK)


def test_facebook_is_plain_and_complete_with_the_link():
    text = kit(view(LONG[:1500]))["facebook"].text
    assert "*" not in text and LONG[:1500].strip() in text
    assert text.endswith(f"Lees meer en volg de updates: {LINK}")


@pytest.mark.parametrize("length", [0, 1, 100, 279, 280, 700, 701, 2000, 10_000])
@pytest.mark.parametrize("credit", [None, "Vera Verbinder"])
@pytest.mark.parametrize("language", ["nl", "en"])
def test_each_format_fits_its_limit_and_keeps_the_link(length, credit, language):
    body = (LONG * 5)[:length] or "x"
    due = NOW + timedelta(hours=3)
    texts = kit(view(body, credit=credit, next_update_due=due, body={language: body}), language)
    for text in texts.values():
        assert text.length <= text.limit, (text.key, text.length)
        assert text.text.endswith(LINK)
        if credit:
            thanks = "Met dank aan" if language == "nl" else "Thanks to"
            assert f"{thanks} Vera Verbinder" in text.text, text.key
    assert len(texts["whatsapp"].text) == texts["whatsapp"].length
    if length > 1000:
        assert "…" in texts["whatsapp"].text and "…" in texts["neighbourhood"].text


def test_sms_is_one_gsm7_message():
    body = "Coördinatie in België: “zandzakken” – nu ophalen 🙏 bij café Ruïne. " * 4
    text = kit(view(body, credit="Anaïs"))["sms"]
    info = sms_info(text.text)
    assert (info.encoding, info.segments) == ("GSM-7", 1)
    assert text.length == info.units <= 160
    # ö is in the GSM-7 alphabet, ë and ï are not; curly quotes, dashes and emoji neither.
    assert text.text.startswith(
        'Waarschuwing - Hoogwater Maas\nCoördinatie in Belgie: "zandzakken" - nu ophalen bij'
    )
    assert "Met dank aan Anais\n" + LINK in text.text


def test_to_gsm7_keeps_what_the_alphabet_has():
    assert to_gsm7("Café Müller, Ærø, 10 €") == "Café Müller, Ærø, 10 €"
    assert to_gsm7("naïef, reünie, Ç, ç, ô 🌊!") == "naief, reünie, Ç, c, o !"


@pytest.mark.parametrize(("language", "marker"), [("nl", "[OEFENING]"), ("en", "[EXERCISE]")])
def test_an_exercise_says_so_in_every_format(language, marker):
    for text in kit(view(LONG, exercise=True), language).values():
        assert marker in text.text.splitlines()[0], text.key


def test_english_texts():
    texts = kit(view(), "en")
    assert texts["whatsapp"].text.startswith("*Warning – Hoogwater Maas*\n\nWater rising.")
    assert texts["whatsapp"].label == "WhatsApp group"
    assert texts["facebook"].text.endswith(f"Read more and follow updates: {LINK}")


def test_a_correction_says_clearly_what_it_is():
    corrected = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)  # 09:05 in Amsterdam
    texts = kit(
        view("Zandzakken bij het gemeentehuis.", kind="correction", supersedes=11),
        "nl",
        corrects_published_at=corrected,
    )
    for text in texts.values():
        assert text.text.lstrip("*").startswith("Correctie: "), text.key
    assert "Let op: dit corrigeert het eerdere bericht van 23-11 09:05." in texts["whatsapp"].text
    assert "dit corrigeert" in texts["facebook"].text
    english = kit(view(kind="correction"), "en", corrects_published_at=corrected)
    assert english["whatsapp"].text.startswith("*Correction: Warning – Hoogwater Maas*")
    assert "this corrects the earlier message of 23-11 09:05" in english["whatsapp"].text


def test_asterisks_do_not_break_the_whatsapp_bold():
    text = kit(view(incident_title="Maas *hoog*"))["whatsapp"].text
    assert text.startswith("*Waarschuwing – Maas hoog*\n")
