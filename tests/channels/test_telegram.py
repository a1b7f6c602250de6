"""The Telegram adapter through python-telegram-bot against the Bot API stand-in: rendering,
the (provider answer → outcome) table, and corrections on the channel post."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from channels.base import ChannelContext, Media, Message, Target, UpdateView
from channels.errors import (
    NotConfigured,
    PermanentFailure,
    RecipientGone,
    RetryLater,
    TargetMoved,
)
from channels.telegram import TelegramChannel, TelegramSettings
from channels.text import utf16_len
from tests.fakes.server import HeldFromFirstLook, SlidingWindow
from tests.fakes.telegram import FakeTelegram, TelegramState

# PTB's own RetryAfter constructor reads the attribute it deprecates; nothing we can change.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")
URL = "http://127.0.0.1:8000/u/7"
RESIDENT, CHANNEL = "4242", "@gemeente"


def view(body: str = "Het water stijgt.", **fields) -> UpdateView:
    values = {
        "id": 7,
        "kind": "update",
        "severity": "warning",
        "body": {"nl": body},
        "url": URL,
        "incident_title": "Hoogwater Maas",
    } | fields
    return UpdateView(**values)


def channel_for(fake: FakeTelegram, **settings) -> TelegramChannel:
    values = {"bot_token": fake.token, "api_url": fake.url, "channel_id": CHANNEL} | settings
    return TelegramChannel(TelegramSettings(**values), ChannelContext("http://127.0.0.1:8000"))


@pytest.fixture
def fake():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
async def channel(fake):
    adapter = channel_for(fake, timeout_seconds=0.5)
    await adapter.start()
    yield adapter
    await adapter.close()


def stored(fake: FakeTelegram, chat, message_id: int = 1) -> dict:
    return fake.state.messages[(chat, message_id)]


# --- settings and addresses -------------------------------------------------------------------


def test_without_a_bot_token_the_channel_is_off(fake):
    with pytest.raises(NotConfigured, match="BROADCAST_TELEGRAM_BOT_TOKEN"):
        channel_for(fake, bot_token=None)


def test_settings_come_from_the_contract_environment_names(monkeypatch, fake):
    from broadcast.delivery.adapters import configure
    from broadcast.settings import Settings

    for field, value in [
        ("BOT_TOKEN", fake.token),
        ("CHANNEL_ID", "-1001234567890"),
        ("WEBHOOK_SECRET", "s3cret"),
        ("API_URL", fake.url),
    ]:
        monkeypatch.setenv(f"BROADCAST_TELEGRAM_{field}", value)
    adapter = configure(TelegramChannel, Settings(), ChannelContext("http://127.0.0.1:8000"))
    assert adapter.broadcast_targets() == ["-1001234567890"]
    assert adapter.api_url == fake.url
    assert adapter.secret_matches("s3cret") and not adapter.secret_matches("s3cre")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("4242", "4242"),
        (" -1001234567890 ", "-1001234567890"),
        ("@gemeente_mook", "@gemeente_mook"),
    ],
)
def test_chat_ids_and_channel_usernames_are_addresses(fake, address, expected):
    assert channel_for(fake).normalize_address(address) == expected


@pytest.mark.parametrize("address", ["", "+31612345678", "gemeente", "@ab", "12a"])
def test_other_addresses_are_refused(fake, address):
    with pytest.raises(ValueError):
        channel_for(fake).normalize_address(address)


# --- rendering --------------------------------------------------------------------------------


def test_html_is_escaped_and_the_headline_is_bold(fake):
    message = channel_for(fake).render(
        view("Zandzakken < 10 kg & meer <b>niet</b>", incident_title="Maas & Niers"), "nl"
    )
    assert message.text.startswith("<b>Waarschuwing – Maas &amp; Niers</b>\n\n")
    assert "Zandzakken &lt; 10 kg &amp; meer &lt;b&gt;niet&lt;/b&gt;" in message.text
    assert not message.shortened


async def test_the_provider_shows_the_text_as_written(fake, channel):
    body = "Peil < 15,10 m NAP & stijgend"
    await channel.send(channel.render(view(body), "nl"), Target(RESIDENT, 1))
    sent = stored(fake, int(RESIDENT))
    assert sent["text"] == f"Waarschuwing – Hoogwater Maas\n\n{body}"
    assert sent["entities"] == [{"offset": 0, "length": 29, "type": "bold"}]


async def test_long_text_is_cut_in_utf16_units_with_a_link(fake, channel):
    body = "Water 🌊 " * 900  # 8,100 UTF-16 units: emoji are two
    message = channel.render(view(body), "nl")
    assert message.shortened
    await channel.send(message, Target(RESIDENT, 1))
    plain = stored(fake, int(RESIDENT))["text"]
    assert utf16_len(plain) <= 4096
    assert plain.endswith(f"…\n{URL}")


def test_escaping_does_not_count_against_the_limit(fake):
    message = channel_for(fake).render(view("<" * 4000), "nl")
    assert not message.shortened and len(message.text) > 4096


async def test_a_photo_carries_the_text_as_a_caption_of_at_most_1024(fake, channel):
    photo = Media("https://example.org/dijk.jpg", "image/jpeg", "De dijk bij Mook")
    message = channel.render(view("Zandzakken bij de brandweer. " * 80, media=(photo,)), "nl")
    assert message.shortened and message.media == (photo,)
    await channel.send(message, Target(RESIDENT, 1))
    sent = stored(fake, int(RESIDENT))
    assert fake.state.sent[0].method == "sendPhoto"
    assert utf16_len(sent["caption"]) <= 1024 and sent["caption"].endswith(URL)


# --- the outcome table ------------------------------------------------------------------------

Setup = Callable[[TelegramState], None]


def _blocked(state: TelegramState) -> None:
    state.blocked_chats.update({int(RESIDENT), CHANNEL})


def _unknown(state: TelegramState) -> None:
    state.unknown_chats.update({int(RESIDENT), CHANNEL})


def _migrated(state: TelegramState) -> None:
    state.migrated_chats[int(RESIDENT)] = -1009876543210


def _flooded(state: TelegramState) -> None:
    # a message went to this chat a moment ago
    state.chat_limit = HeldFromFirstLook(1, state.chat_limit.period, key=int(RESIDENT))


OUTCOMES: list[tuple[str, Setup, bool, type[Exception], str]] = [
    ("blocked resident", _blocked, True, RecipientGone, "bot was blocked by the user"),
    ("bot not in channel", _blocked, False, PermanentFailure, "not a member of the channel"),
    ("deleted chat", _unknown, True, RecipientGone, "(?i)chat not found"),
    ("unknown channel", _unknown, False, PermanentFailure, "(?i)chat not found"),
    ("group migrated", _migrated, True, TargetMoved, "supergroup"),
    ("flood control", _flooded, True, RetryLater, "retry after 1 s"),
    ("server error", lambda s: s.faults.fail_next(1, 500), True, RetryLater, "Internal Server"),
    ("bad gateway", lambda s: s.faults.fail_next(1, 502), True, RetryLater, "Bad Gateway"),
    ("timeout", lambda s: s.faults.hang_next(1, 2.0), True, RetryLater, "timed out"),
]


@pytest.mark.parametrize(
    ("case", "setup", "per_subscriber", "error", "reason"),
    OUTCOMES,
    ids=[case[0] for case in OUTCOMES],
)
async def test_provider_answers_are_classified(
    fake, channel, case, setup, per_subscriber, error, reason
):
    setup(fake.state)
    address = RESIDENT if per_subscriber else CHANNEL
    with pytest.raises(error, match=reason) as raised:
        await channel.send(channel.render(view(), "nl"), Target(address, 1, per_subscriber))
    assert type(raised.value) is error
    if error is TargetMoved:
        assert raised.value.new_address == "-1009876543210"
    if case == "flood control":
        assert raised.value.retry_after == 1.0


async def test_a_refused_token_is_permanent_and_never_logged(fake, caplog):
    adapter = channel_for(fake, bot_token="987654321:AAHanotherTokenThatTelegramRefuses01")
    await adapter.start()
    try:
        with pytest.raises(PermanentFailure, match="token was rejected") as raised:
            await adapter.send(adapter.render(view(), "nl"), Target(RESIDENT, 1))
    finally:
        await adapter.close()
    assert type(raised.value) is PermanentFailure
    assert "AAHanother" not in caplog.text + str(raised.value)


async def test_text_the_api_refuses_is_a_permanent_failure(channel):
    message = Message(update_id=7, language="nl", text="<b>open tag")
    with pytest.raises(PermanentFailure, match="(?i)can't parse entities"):
        await channel.send(message, Target(RESIDENT, 1))


async def test_a_receipt_names_the_chat_and_the_message(fake, channel):
    receipt = await channel.send(channel.render(view(), "nl"), Target(RESIDENT, 1))
    assert receipt.provider_id == f"{RESIDENT}:1" and receipt.delivered


# --- corrections ------------------------------------------------------------------------------


@pytest.fixture
def roomy(fake):
    """Corrections follow their original within milliseconds; not a test of 1/s per chat."""
    fake.state.chat_limit = SlidingWindow(100, 1.0)


async def correct(channel, receipt, per_subscriber: bool, kind: str = "correction"):
    address = CHANNEL if not per_subscriber else RESIDENT
    correction = view("Piek pas zaterdag.", kind=kind, id=8, supersedes=7)
    target = Target(address, 2, per_subscriber, original_message_id=receipt.provider_id)
    return await channel.send(channel.render(correction, "nl"), target)


async def test_a_correction_strikes_the_channel_post_and_replies_to_it(fake, channel, roomy):
    first = await channel.send(
        channel.render(view("Piek vrijdag."), "nl"), Target(CHANNEL, 1, False)
    )
    await correct(channel, first, per_subscriber=False)

    original = stored(fake, CHANNEL, 1)
    assert original["text"] == (
        "Gecorrigeerd (zie het bericht hieronder)\nWaarschuwing – Hoogwater Maas\n\nPiek vrijdag."
    )
    assert {"offset": 41, "length": 44, "type": "strikethrough"} in original["entities"]
    notice = fake.state.sent[-1]
    assert notice.reply_to_message_id == 1 and "Piek pas zaterdag." in notice.text


async def test_a_retraction_of_a_photo_marks_its_caption(fake, channel, roomy):
    photo = Media("https://example.org/dijk.jpg", "image/jpeg")
    first = await channel.send(
        channel.render(view("Dijk houdt.", media=(photo,)), "nl"), Target(CHANNEL, 1, False)
    )
    await correct(channel, first, per_subscriber=False, kind="retraction")
    assert fake.state.edits[0].method == "editMessageCaption"
    assert stored(fake, CHANNEL, 1)["caption"].startswith("Ingetrokken (zie het bericht")


async def test_a_failed_edit_never_holds_the_correction_back(fake, channel, roomy):
    first = await channel.send(channel.render(view(), "nl"), Target(CHANNEL, 1, False))
    await correct(channel, first, per_subscriber=False)
    again = await correct(channel, first, per_subscriber=False)  # edit: "message is not modified"
    assert again.provider_id.endswith(":3")
    del fake.state.messages[(CHANNEL, 1)]  # deleted by an admin: nothing to reply to or edit
    await correct(channel, first, per_subscriber=False)
    assert len(fake.state.edits) == 1 and len(fake.state.sent) == 4
    assert fake.state.sent[-1].reply_parameters["allow_sending_without_reply"] is True


async def test_a_resident_gets_the_correction_as_a_reply_without_edits(fake, channel, roomy):
    first = await channel.send(channel.render(view(), "nl"), Target(RESIDENT, 1))
    await correct(channel, first, per_subscriber=True)
    assert fake.state.sent[-1].reply_to_message_id == 1
    assert fake.state.edits == []


async def test_start_registers_the_webhook_on_a_public_https_address(fake):
    adapter = TelegramChannel(
        TelegramSettings(bot_token=fake.token, api_url=fake.url, webhook_secret="s3cret"),
        ChannelContext("https://crisis.example.nl"),
    )
    await adapter.start()
    await adapter.close()
    assert fake.state.webhook["url"] == "https://crisis.example.nl/webhooks/telegram"
    assert fake.state.webhook["secret_token"] == "s3cret"
