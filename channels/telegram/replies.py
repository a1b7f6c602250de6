"""What the bot says to residents, in Dutch and English. HTML parse mode: only fixed markup
here; anything a resident or an officer wrote is escaped where it is filled in."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from channels.base import DEFAULT_LANGUAGE, LANGUAGES

TEXTS: dict[str, dict[str, str]] = {
    "welcome": {
        "nl": "Welkom bij de crisisberichten van de gemeente.\n\n"
        "Stuur uw <b>postcode</b> (4 cijfers, bijvoorbeeld 6585) voor berichten over uw dorp, "
        "of kies <b>Heel de gemeente</b>.\n\n<i>In English? Tap English below.</i>",
        "en": "Welcome to the municipality's crisis updates.\n\n"
        "Send your <b>postcode</b> (4 digits, for example 6585) for updates about your village, "
        "or choose <b>Whole municipality</b>.",
    },
    "subscribed": {
        "nl": "U bent aangemeld voor berichten over postcode {postcode}. Stoppen: stuur /stop.",
        "en": "You will receive updates for postcode {postcode}. To stop, send /stop.",
    },
    "subscribed_all": {
        "nl": "U bent aangemeld voor berichten over de hele gemeente. Stoppen: stuur /stop.",
        "en": "You will receive updates for the whole municipality. To stop, send /stop.",
    },
    "already": {
        "nl": "U bent al aangemeld. Ander gebied? Stuur /stop en daarna uw nieuwe postcode.",
        "en": "You are already subscribed. Another area? Send /stop, then your new postcode.",
    },
    "unknown_postcode": {
        "nl": "Postcode {postcode} hoort niet bij de gemeente. Stuur een postcode uit de "
        "gemeente, of kies Heel de gemeente.",
        "en": "Postcode {postcode} is not in the municipality. Send a postcode from the "
        "municipality, or choose Whole municipality.",
    },
    "ask_postcode": {
        "nl": "Stuur uw postcode, bijvoorbeeld: /gebied 6585",
        "en": "Send your postcode, for example: /gebied 6585",
    },
    "stopped": {
        "nl": "U bent afgemeld en krijgt geen berichten meer. Opnieuw aanmelden: stuur /start.",
        "en": "You are unsubscribed and will get no more updates. To subscribe again: /start.",
    },
    "not_subscribed": {
        "nl": "U was niet aangemeld. Aanmelden: stuur /start.",
        "en": "You were not subscribed. To subscribe: /start.",
    },
    "help": {
        "nl": "<b>Crisisberichten van de gemeente</b>\n"
        "/gebied 6585 – berichten over uw postcode\n"
        "/status – de laatste berichten\n"
        "/stop – afmelden\n\n"
        "Een vraag? Stuur die als bericht; de gemeente antwoordt hier. Bij direct gevaar: 112.",
        "en": "<b>Crisis updates from the municipality</b>\n"
        "/gebied 6585 – updates for your postcode\n"
        "/status – the latest updates\n"
        "/stop – unsubscribe\n\n"
        "A question? Send it as a message; the municipality answers here. In an emergency: 112.",
    },
    "linked": {
        "nl": "Gekoppeld. U krijgt hier een herinnering voordat een beloofd bericht te laat is "
        "(als u dienst heeft).",
        "en": "Linked. You will get a reminder here before a promised update is late "
        "(when you are on duty).",
    },
    "link_refused": {
        "nl": "Die code is onbekend of verlopen. Vraag in de console een nieuwe code.",
        "en": "That code is unknown or has expired. Ask the console for a new code.",
    },
    "link_how": {
        "nl": "Stuur /koppel met de code uit de console, bijvoorbeeld: /koppel ABCD2345",
        "en": "Send /koppel with the code from the console, for example: /koppel ABCD2345",
    },
    "thanks": {
        "nl": "Bedankt, we hebben uw vraag ontvangen. We antwoorden zo snel mogelijk. "
        "Bij direct gevaar: bel 112.",
        "en": "Thank you, we have received your question and will answer as soon as we can. "
        "In an emergency call 112.",
    },
    "status_none": {
        "nl": "Er zijn op dit moment geen actuele berichten.",
        "en": "There are no current updates.",
    },
    "status_head": {"nl": "<b>Laatste berichten</b>", "en": "<b>Latest updates</b>"},
    "instruction_head": {"nl": "Wat moet u nu doen", "en": "What to do now"},
    "text_only": {
        "nl": "Stuur uw vraag als tekstbericht, dan komt die bij de gemeente aan.",
        "en": "Please send your question as a text message so it reaches the municipality.",
    },
    "sorry": {
        "nl": "Er ging iets mis. Probeer het later opnieuw of bel de gemeente.",
        "en": "Something went wrong. Please try again later or call the municipality.",
    },
    "language_set": {"nl": "Nederlands gekozen", "en": "English selected"},
    "unknown_button": {"nl": "Deze knop werkt niet meer.", "en": "This button no longer works."},
}
_BUTTONS = {
    "nl": (("Heel de gemeente", "all:nl"), ("English", "lang:en")),
    "en": (("Whole municipality", "all:en"), ("Nederlands", "lang:nl")),
}


def language_of(code: str | None) -> str:
    """Telegram's ``language_code`` (an IETF tag such as ``en-GB``) to ours."""
    base = (code or "").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def say(key: str, language: str, **values: str) -> str:
    text = TEXTS[key].get(language) or TEXTS[key][DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


def area_buttons(language: str) -> InlineKeyboardMarkup:
    """Whole municipality, and the other language. The data carries the language, so a tap
    means the same whichever process receives it."""
    buttons = _BUTTONS.get(language, _BUTTONS[DEFAULT_LANGUAGE])
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in buttons]])
