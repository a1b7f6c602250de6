"""What adapters declare to the core (``channels.base.Channel``): how long a text is in the
channel's own unit, what residents read without markup, whether residents sign up on it by code,
and how it renders when it is not configured."""

from __future__ import annotations

import pytest

from channels.base import SIGNUP_BY_CODE, Measurement, UpdateView
from channels.errors import NotConfigured
from channels.mastodon import MastodonChannel
from channels.platform import PlatformChannel
from channels.registry import discover
from channels.sms import SmsChannel, WhatsAppChannel
from channels.telegram import TelegramChannel

URL = "https://crisis.example.nl/u/7"


def view(body: str, **changes) -> UpdateView:
    fields = {"id": 7, "kind": "update", "severity": "warning", "body": {"nl": body}, "url": URL}
    return UpdateView(**fields | {"incident_title": "Hoogwater"} | changes)


@pytest.mark.parametrize("cls", [SmsChannel, WhatsAppChannel, TelegramChannel, MastodonChannel])
def test_an_adapter_that_is_not_configured_still_renders_with_its_defaults(cls):
    with pytest.raises(NotConfigured):
        cls(cls.Settings(), context=None)
    renderer = cls.preview_renderer()
    assert renderer.name == cls.name and renderer.settings == cls.Settings()
    assert "Dijk dicht" in renderer.plain_text(renderer.render(view("Dijk dicht."), "nl"))


def test_sms_is_measured_in_segments_against_the_configured_maximum():
    sms = SmsChannel.preview_renderer()
    assert sms.measure("x" * 161) == Measurement(2, 3, "segments", "GSM-7")
    assert sms.measure("Ë" * 71) == Measurement(2, 3, "segments", "UCS-2")


def test_whatsapp_counts_characters_not_segments():
    assert WhatsAppChannel.preview_renderer().measure("x" * 161) == Measurement(161, None)


def test_mastodon_counts_a_link_as_23_characters():
    text = "Zie https://crisis.example.nl/incidents/hoogwater-maas-juli-2021/updates/17"
    assert MastodonChannel.preview_renderer().measure(text) == Measurement(4 + 23, 500)


def test_telegram_gives_its_html_as_the_plain_text_residents_read():
    telegram = TelegramChannel.preview_renderer()
    message = telegram.render(view("Peil < 15 m & dalend."), "nl")
    assert message.text.startswith("<b>Waarschuwing – Hoogwater</b>")
    assert telegram.plain_text(message) == "Waarschuwing – Hoogwater\n\nPeil < 15 m & dalend."
    assert telegram.measure("🌊" * 2) == Measurement(4, 4096)  # UTF-16 code units


def test_the_defaults_count_utf16_code_units_and_keep_the_text():
    platform = PlatformChannel.preview_renderer()
    message = platform.render(view("Dijk dicht."), "nl")
    assert platform.plain_text(message) == message.text
    assert platform.measure("🌊a") == Measurement(3, None)


def test_only_sms_offers_sign_up_by_code():
    found, _broken = discover()
    assert [name for name, cls in found.items() if cls.self_signup == SIGNUP_BY_CODE] == ["sms"]
