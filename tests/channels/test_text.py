from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from channels.base import UpdateView
from channels.text import (
    compose_plain,
    fit,
    fit_mastodon,
    fit_sms,
    fit_telegram,
    gsm_friendly,
    kind_label,
    mastodon_length,
    next_update_line,
    sms_info,
    telegram_escape,
    utf16_len,
)

LINK = "https://crisis.example.nl/u/42"
DUTCH = "Het water in de Maas stijgt snel; blijf uit de uiterwaarden en volg de aanwijzingen. "


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_update(**changes) -> UpdateView:
    fields = {
        "id": 1,
        "kind": "update",
        "severity": "info",
        "body": {"nl": "De Maas stijgt.", "en": "The Meuse is rising."},
        "url": LINK,
        "incident_title": "Hoogwater Maas",
    }
    return UpdateView(**{**fields, **changes})


# --- SMS encoding and segments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 459, "GSM-7", 459, 3),
        ("a" * 460, "GSM-7", 460, 4),
        ("€" * 80, "GSM-7", 160, 1),
        ("€" * 81, "GSM-7", 162, 2),
        ("^{}\\[~]|€\f", "GSM-7", 20, 1),
        ("a" * 151 + "€" + "a" * 153, "GSM-7", 306, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("ë" * 70, "UCS-2", 70, 1),
        ("ë" * 71, "UCS-2", 71, 2),
        ("ë" * 134, "UCS-2", 134, 2),
        ("ë" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),
        ("ë" * 65 + "😀" + "ë" * 67, "UCS-2", 134, 2),
        ("ë" * 66 + "😀" + "ë" * 66, "UCS-2", 134, 3),
        ("Hoogwater in België", "UCS-2", 19, 1),
        ("Café Zuid-Limburg: Ä Ö Ü ß", "GSM-7", 26, 1),
    ],
    ids=[
        "empty-text-is-billed-as-one-segment",
        "160-septets-fit-one-segment",
        "161-septets-need-two",
        "306-septets-fit-two",
        "307-septets-need-three",
        "459-septets-fit-three",
        "460-septets-need-four",
        "80-euro-signs-are-160-septets",
        "81-euro-signs-need-two",
        "every-extension-char-costs-two",
        "escape-pair-ending-a-segment-fits",
        "escape-pair-straddling-a-boundary-moves-to-next-segment",
        "70-ucs2-units-fit-one-segment",
        "71-ucs2-units-need-two",
        "134-ucs2-units-fit-two",
        "135-ucs2-units-need-three",
        "emoji-count-as-two-utf16-units",
        "surrogate-pair-ending-a-segment-fits",
        "surrogate-pair-straddling-a-boundary-moves-to-next-segment",
        "e-trema-of-belgie-forces-ucs2",
        "gsm7-accented-letters-stay-gsm7",
    ],
)
def test_sms_info_counts_like_carriers(text, encoding, units, segments):
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("‘Blijf binnen’, zegt de burgemeester…", "'Blijf binnen', zegt de burgemeester..."),
        ("„Sluit ramen” en “deuren”", '"Sluit ramen" en "deuren"'),
        ("Maastricht – Venlo — Roermond", "Maastricht - Venlo - Roermond"),
        ("om\u00a018:00 en\u202f19:00", "om 18:00 en 19:00"),
        ("uiter\u00adwaarden\u200b", "uiterwaarden"),
        ("België, Curaçao, Zoë", "België, Curaçao, Zoë"),
    ],
    ids=[
        "curly-single-quotes-and-ellipsis",
        "dutch-low-and-curly-double-quotes",
        "en-and-em-dashes",
        "non-breaking-spaces",
        "invisible-soft-hyphen-and-zero-width-space",
        "letters-are-never-changed",
    ],
)
def test_gsm_friendly_replaces_typography_only(raw, expected):
    assert gsm_friendly(raw) == expected


def test_gsm_friendly_brings_curly_quoted_dutch_back_to_gsm7():
    sentence = "De burgemeester: “Blijf binnen – ook vannacht…” ‘Echt waar’. " * 3
    assert sms_info(sentence).encoding == "UCS-2"
    friendly = sms_info(gsm_friendly(sentence))
    assert friendly.encoding == "GSM-7"
    assert friendly.segments < sms_info(sentence).segments


# --- fit_sms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "max_segments"),
    [("a" * 160, 1), ("a" * 306, 2), ("ë" * 70, 1), ("", 1), (DUTCH, 1)],
    ids=["full-single-gsm7", "full-double-gsm7", "full-single-ucs2", "empty", "short-dutch"],
)
def test_fit_sms_leaves_text_that_fits_unchanged(text, max_segments):
    fitted = fit_sms(text, LINK, max_segments)
    assert (fitted.text, fitted.shortened) == (text, False)
    assert fitted.parts == sms_info(text).segments


@pytest.mark.parametrize("max_segments", [1, 2, 3])
@pytest.mark.parametrize(
    "source",
    [
        DUTCH * 12,
        "Inwoners van België en Zoë's buren: " * 30,
        "Kaart {A} [B] € ~ " * 60,
        "Blijf binnen 🚒 " * 70,
        "x" * 1000,
    ],
    ids=["gsm7-words", "ucs2-words", "extension-chars", "emoji", "no-spaces"],
)
def test_fit_sms_never_exceeds_max_segments_at_any_length(source, max_segments):
    for length in range(1, 1001):
        text = source[:length]
        fitted = fit_sms(text, LINK, max_segments)
        info = sms_info(fitted.text)
        assert fitted.parts == info.segments <= max_segments, length
        assert fitted.shortened == (sms_info(text).segments > max_segments), length
        if fitted.shortened:
            assert fitted.text.endswith("... " + LINK), length
        else:
            assert fitted.text == text, length


def test_fit_sms_keeps_gsm7_text_in_gsm7_when_shortening():
    fitted = fit_sms(DUTCH * 5, LINK, 2)
    assert fitted.shortened
    assert sms_info(fitted.text).encoding == "GSM-7"
    assert "…" not in fitted.text


def test_fit_sms_cuts_at_a_word_boundary():
    fitted = fit_sms(DUTCH * 5, LINK, 1)
    kept = fitted.text.removesuffix("... " + LINK)
    assert (DUTCH * 5).startswith(kept)
    assert (DUTCH * 5)[len(kept)] in " ;."


def test_fit_sms_drops_a_link_that_cannot_fit():
    long_link = "https://crisis.example.nl/" + "a" * 200
    fitted = fit_sms(DUTCH * 5, long_link, 1)
    assert fitted.shortened and fitted.parts == 1
    assert fitted.text.endswith("...") and "https" not in fitted.text


def test_fit_sms_rejects_fewer_than_one_segment():
    with pytest.raises(ValueError):
        fit_sms("tekst", LINK, 0)


# --- fit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "link", "expected"),
    [
        ("Blijf binnen.", 13, "https://x.nl", "Blijf binnen."),
        ("Blijf binnen en sluit ramen.", 20, "https://x.nl", "Blijf… https://x.nl"),
        ("Sluit ramen, deuren en ventilatie", 13, "", "Sluit ramen…"),
        ("Hoogwaterwaarschuwingvoorderegio", 10, "", "Hoogwater…"),
        ("Een twee drie vier vijf", 10, "https://example.com/long", "Een twee…"),
        (
            "Waarschuwing\n\nBlijf binnen alstublieft",
            30,
            "https://x.nl",
            "Waarschuwing…\nhttps://x.nl",
        ),
        ("e\u0301" * 20, 10, "", "e\u0301" * 4 + "…"),
        ("👩\u200d🚒" * 10, 8, "", "👩\u200d🚒" * 2 + "…"),
    ],
    ids=[
        "text-within-limit-is-unchanged",
        "cut-at-last-space-then-ellipsis-and-link",
        "trailing-punctuation-is-stripped-before-ellipsis",
        "hard-cut-when-no-space-near-the-end",
        "link-dropped-when-it-cannot-fit-alone",
        "multi-line-text-gets-link-on-its-own-line",
        "hard-cut-keeps-combining-accent-with-its-letter",
        "hard-cut-keeps-zwj-emoji-sequence-whole",
    ],
)
def test_fit_applies_one_overflow_policy(text, limit, link, expected):
    fitted = fit(text, limit, link)
    assert fitted.text == expected
    assert fitted.shortened == (text != expected)
    assert len(fitted.text) <= limit


# --- Telegram --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<b>&", "&lt;b&gt;&amp;"),
        ("Water > 2 m & stijgend", "Water &gt; 2 m &amp; stijgend"),
        ("&amp; blijft letterlijk", "&amp;amp; blijft letterlijk"),
        ('"Blijf binnen" zei \'t RIVM', '"Blijf binnen" zei \'t RIVM'),
    ],
    ids=["tag-and-ampersand", "comparison", "existing-entity-is-escaped-again", "quotes-untouched"],
)
def test_telegram_escape_replaces_only_amp_lt_gt(raw, escaped):
    assert telegram_escape(raw) == escaped


@pytest.mark.parametrize(
    ("text", "units"),
    [("", 0), ("Maas", 4), ("België", 6), ("😀", 2), ("👍🏽", 4), ("🇳🇱", 4), ("€", 1)],
    ids=["empty", "ascii", "bmp-accent", "emoji", "emoji-with-skin-tone", "flag", "euro"],
)
def test_utf16_len_counts_code_units(text, units):
    assert utf16_len(text) == units


@pytest.mark.parametrize(
    ("text", "limit"),
    [(DUTCH * 60, 4096), ("Noodweer 🌩️ " * 600, 4096), ("Hoogwater\n\n" + DUTCH * 20, 1024)],
    ids=["long-message", "emoji-heavy-message", "caption"],
)
def test_fit_telegram_stays_within_the_limit_in_utf16_units(text, limit):
    fitted = fit_telegram(text, LINK, limit)
    assert fitted.shortened
    assert utf16_len(fitted.text) <= limit < utf16_len(text)
    assert fitted.text.endswith("… " + LINK) or fitted.text.endswith("…\n" + LINK)


def test_fit_telegram_leaves_a_message_of_exactly_the_limit_unchanged():
    text = "ë" * 4094 + "😀"
    assert fit_telegram(text, LINK).text == text


# --- Mastodon --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("Blijf binnen", 12),
        ("Zie https://crisis.example.nl/" + "a" * 100, 4 + 23),
        ("Zie http://x.nl", 4 + 23),
        ("Kaart: https://crisis.example.nl/kaart/maas-limburg-noord.", 7 + 23 + 1),
        ("https://a.nl/1 en https://b.nl/" + "2" * 80, 23 + 4 + 23),
        ("Dank @anouk@mastodon.social!", 5 + 6 + 1),
        ("Dank @anouk!", 12),
        ("Mail info@gemeente.nl", 21),
        ("België 🚒", 8),
    ],
    ids=[
        "plain-text-by-code-point",
        "long-https-url-counts-23",
        "short-http-url-counts-23",
        "sentence-end-is-not-part-of-url",
        "every-url-counts-23",
        "remote-mention-counts-only-username",
        "local-mention-counts-in-full",
        "email-address-is-not-a-mention",
        "emoji-by-code-point",
    ],
)
def test_mastodon_length_counts_like_mastodon(text, length):
    assert mastodon_length(text) == length


def test_fit_mastodon_counts_a_long_link_as_23_characters():
    long_link = "https://crisis.example.nl/incidenten/hoogwater-maas/updates/" + "x" * 60
    fitted = fit_mastodon(DUTCH * 10, long_link)
    assert fitted.shortened and fitted.text.endswith(long_link)
    assert mastodon_length(fitted.text) <= 500 < len(fitted.text)


# --- Labels and composition ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "language", "label"),
    [
        ("correction", "nl", "Correctie"),
        ("correction", "en", "Correction"),
        ("retraction", "nl", "Ingetrokken"),
        ("retraction", "en", "Retracted"),
        ("all_clear", "nl", "Alles veilig"),
        ("all_clear", "en", "All clear"),
        ("answer", "nl", "Vraag en antwoord"),
        ("answer", "en", "Questions and answers"),
        ("update", "nl", None),
        ("unknown", "en", None),
        ("correction", "de", "Correctie"),
    ],
)
def test_kind_label_is_dutch_first_with_english(kind, language, label):
    assert kind_label(kind, language) == label


@pytest.mark.parametrize(
    ("due", "now", "language", "line"),
    [
        (utc(2021, 7, 15, 16), utc(2021, 7, 15, 8), "nl", "Volgende update verwacht om 18:00"),
        (utc(2021, 7, 15, 16), utc(2021, 7, 15, 8), "en", "Next update expected at 18:00"),
        (
            utc(2021, 7, 15, 22, 30),
            utc(2021, 7, 15, 20),
            "nl",
            "Volgende update verwacht op vr 16 jul om 00:30",
        ),
        (
            utc(2021, 7, 15, 22, 30),
            utc(2021, 7, 15, 20),
            "en",
            "Next update expected on Fri 16 Jul at 00:30",
        ),
        (utc(2021, 7, 16, 4), utc(2021, 7, 15, 22, 30), "nl", "Volgende update verwacht om 06:00"),
        (
            utc(2021, 7, 24, 4),
            utc(2021, 7, 23, 12),
            "nl",
            "Volgende update verwacht op za 24 jul om 06:00",
        ),
        (
            utc(2021, 7, 24, 4),
            utc(2021, 7, 23, 12),
            "en",
            "Next update expected on Sat 24 Jul at 06:00",
        ),
        (
            utc(2021, 3, 28, 1, 30),
            utc(2021, 3, 27, 23, 30),
            "nl",
            "Volgende update verwacht om 03:30",
        ),
        (utc(2021, 10, 31, 1, 30), utc(2021, 10, 31, 0, 30), "en", "Next update expected at 02:30"),
        (utc(2021, 12, 15, 17), utc(2021, 12, 15, 9), "nl", "Volgende update verwacht om 18:00"),
        (
            utc(2021, 3, 1, 8),
            utc(2021, 2, 28, 8),
            "nl",
            "Volgende update verwacht op ma 1 mrt om 09:00",
        ),
        (
            utc(2021, 5, 3, 8),
            utc(2021, 5, 2, 8),
            "nl",
            "Volgende update verwacht op ma 3 mei om 10:00",
        ),
        (datetime(2021, 7, 15, 16), utc(2021, 7, 15, 8), "nl", "Volgende update verwacht om 18:00"),
        (
            datetime(2021, 7, 15, 18, tzinfo=ZoneInfo("Europe/Amsterdam")),
            utc(2021, 7, 15, 8),
            "nl",
            "Volgende update verwacht om 18:00",
        ),
        (utc(2021, 7, 15, 16), utc(2021, 7, 15, 8), "fr", "Volgende update verwacht om 18:00"),
    ],
    ids=[
        "same-day-summer-time-nl",
        "same-day-summer-time-en",
        "after-local-midnight-shows-date-nl",
        "after-local-midnight-shows-date-en",
        "different-utc-dates-but-same-local-day",
        "next-day-nl",
        "next-day-en",
        "night-clocks-go-forward",
        "night-clocks-go-back",
        "winter-time",
        "dutch-month-abbreviation-mrt",
        "dutch-month-abbreviation-mei",
        "naive-datetime-is-utc",
        "aware-local-datetime",
        "unknown-language-falls-back-to-dutch",
    ],
)
def test_next_update_line_in_amsterdam_time(due, now, language, line):
    assert next_update_line(due, language, now=now) == line


NOW = utc(2021, 7, 15, 8)


@pytest.mark.parametrize(
    ("changes", "language", "expected"),
    [
        ({}, "nl", "Hoogwater Maas\n\nDe Maas stijgt."),
        ({}, "en", "Hoogwater Maas\n\nThe Meuse is rising."),
        ({"severity": "warning"}, "nl", "Waarschuwing – Hoogwater Maas\n\nDe Maas stijgt."),
        ({"severity": "emergency"}, "en", "Emergency – Hoogwater Maas\n\nThe Meuse is rising."),
        ({"severity": "advisory"}, "nl", "Hoogwater Maas\n\nDe Maas stijgt."),
        (
            {"kind": "correction", "severity": "warning"},
            "nl",
            "Correctie: Waarschuwing – Hoogwater Maas\n\nDe Maas stijgt.",
        ),
        (
            {"kind": "all_clear", "severity": "emergency"},
            "en",
            "All clear: Hoogwater Maas\n\nThe Meuse is rising.",
        ),
        (
            {"kind": "retraction", "severity": "warning"},
            "nl",
            "Ingetrokken: Hoogwater Maas\n\nDe Maas stijgt.",
        ),
        ({"kind": "answer"}, "en", "Questions and answers: Hoogwater Maas\n\nThe Meuse is rising."),
        ({"kind": "correction", "incident_title": ""}, "nl", "Correctie\n\nDe Maas stijgt."),
        (
            {"credit": "Anouk de Vries", "next_update_due": utc(2021, 7, 15, 16)},
            "nl",
            "Hoogwater Maas\n\nDe Maas stijgt.\n\n"
            "Met dank aan Anouk de Vries\nVolgende update verwacht om 18:00",
        ),
        (
            {"credit": "Anouk de Vries", "next_update_due": utc(2021, 7, 24, 4)},
            "en",
            "Hoogwater Maas\n\nThe Meuse is rising.\n\n"
            "Thanks to Anouk de Vries\nNext update expected on Sat 24 Jul at 06:00",
        ),
        ({"body": {"nl": "De Maas stijgt."}}, "en", "Hoogwater Maas\n\nDe Maas stijgt."),
    ],
    ids=[
        "info-update-nl-is-title-and-body",
        "info-update-en",
        "warning-prefixes-severity",
        "emergency-prefixes-severity-en",
        "advisory-has-no-prefix",
        "correction-label-before-severity",
        "all-clear-does-not-repeat-the-alarm",
        "retraction-does-not-repeat-the-alarm",
        "answer-label",
        "label-alone-without-incident-title",
        "credit-and-next-update-nl",
        "credit-and-next-update-on-another-day-en",
        "missing-english-body-falls-back-to-dutch",
    ],
)
def test_compose_plain_in_both_languages(changes, language, expected):
    assert compose_plain(make_update(**changes), language, now=NOW) == expected


def test_compose_plain_without_title_is_body_and_footer():
    update = make_update(credit="Anouk", next_update_due=utc(2021, 7, 15, 16))
    assert compose_plain(update, "nl", title=False, now=NOW) == (
        "De Maas stijgt.\n\nMet dank aan Anouk\nVolgende update verwacht om 18:00"
    )


def test_composed_warning_fits_one_gsm7_sms_after_gsm_friendly():
    update = make_update(severity="warning", body={"nl": DUTCH * 3})
    fitted = fit_sms(gsm_friendly(compose_plain(update, "nl", now=NOW)), LINK, 1)
    assert fitted.shortened and fitted.parts == 1
    assert sms_info(fitted.text).encoding == "GSM-7"
    assert fitted.text.startswith("Waarschuwing - Hoogwater Maas\n\n")


@pytest.mark.parametrize("language, marker", [("nl", "[OEFENING]"), ("en", "[EXERCISE]")])
def test_exercise_updates_are_marked_in_the_headline(language, marker):
    update = UpdateView(
        id=1,
        kind="update",
        severity="warning",
        body={"nl": "Test", "en": "Test"},
        url="https://example.org/u/1",
        incident_title="Hoogwater",
        exercise=True,
    )
    assert compose_plain(update, language).startswith(marker)
