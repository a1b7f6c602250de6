"""Whom a rate-limit refusal concerns: one recipient (a busy chat, Twilio's per-number guard)
waits alone, while a refusal of the whole bot or account pauses the channel's lane."""

from __future__ import annotations

import pytest
from sqlmodel import select

from broadcast.delivery.models import Delivery
from broadcast.delivery.pacing import Pacer
from channels.base import Limits, Target
from channels.errors import CHANNEL, TARGET, RetryLater
from channels.sms.channel import CALLBACK_RETRY_SECONDS
from channels.telegram.classify import GROUP_CHAT_WINDOW, PRIVATE_CHAT_WINDOW, RecentChats
from tests.fakes.server import HeldFromFirstLook, SlidingWindow
from tests.fakes.telegram import FakeTelegram
from tests.support import (
    NUMBER,
    RESIDENT_CHAT,
    build_client,
    counts,
    new_incident,
    post_update,
    settled,
    sms_channel,
    subscribe_chat,
    subscribe_number,
    telegram_channel,
    token_for,
    update_view,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after:DeprecationWarning")


@pytest.fixture
def tg():
    with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(tg):
    adapter = telegram_channel(tg, timeout_seconds=0.5)
    await adapter.start()
    yield adapter
    await adapter.close()


# --- the error and the pacer ------------------------------------------------------------------


def test_retry_later_is_channel_wide_unless_told_otherwise():
    assert RetryLater("busy").scope == CHANNEL
    assert RetryLater("busy", retry_after=2, scope=TARGET).scope == TARGET
    with pytest.raises(ValueError):
        RetryLater("busy", scope="everyone")


async def test_a_hold_delays_only_its_target_and_a_pause_everybody(virtual_clock):
    slept = virtual_clock.slept
    pacer = Pacer(Limits(per_second=None), clock=virtual_clock)
    pacer.hold("busy", 0.3)
    async with pacer.slot("other"):
        assert slept == []  # not held: no wait at all
    async with pacer.slot("busy"):
        assert sum(slept) == pytest.approx(0.3)

    slept.clear()
    pacer.pause(0.3)
    async with pacer.slot("third"):
        assert sum(slept) == pytest.approx(0.3)


def test_expired_holds_are_forgotten():
    now = [100.0]
    pacer = Pacer(Limits(per_second=10, per_target_interval=1.0), clock=lambda: now[0])
    pacer.hold("busy", 5)
    now[0] += 6
    pacer.forget_idle()
    assert pacer._held_until == {}


# --- Telegram: a chat's own flood control or the bot's ---------------------------------------


def test_a_private_chat_is_recent_for_seconds_a_group_or_channel_for_a_minute():
    now = [0.0]
    recent = RecentChats(clock=lambda: now[0])
    for chat in ("4242", "-1001234567890", "@gemeente"):
        recent.sent(chat)
    now[0] += PRIVATE_CHAT_WINDOW + 0.1
    assert not recent.recent("4242")
    assert recent.recent("-1001234567890") and recent.recent("@gemeente")
    now[0] += GROUP_CHAT_WINDOW
    recent.sent("4243")  # prunes what no window can look back to
    assert not recent.recent("@gemeente") and len(recent._last) == 1


async def test_a_429_right_after_our_own_message_to_the_chat_holds_only_that_chat(tg, bot):
    # The chat's window and our memory of the chat outlast any slow machine: the second send
    # is refused and recent, whenever it comes.
    tg.state.chat_limit = SlidingWindow(1, 60.0)
    bot.recent = RecentChats(clock=lambda: 0.0)
    message = bot.render(update_view(), "nl")
    await bot.send(message, Target(RESIDENT_CHAT, 1))
    with pytest.raises(RetryLater) as refused:
        await bot.send(message, Target(RESIDENT_CHAT, 2))
    assert refused.value.scope == TARGET and refused.value.retry_after == 60.0
    assert tg.state.rate_limited[-1]["scope"] == "chat"


async def test_a_429_for_a_chat_we_did_not_write_to_pauses_the_channel(tg, bot):
    tg.state.global_limit = HeldFromFirstLook(1, 5.0)  # the bot as a whole is over its limit
    with pytest.raises(RetryLater) as refused:
        await bot.send(bot.render(update_view(), "nl"), Target(RESIDENT_CHAT, 1))
    assert refused.value.scope == CHANNEL and refused.value.retry_after >= 4


async def test_a_refusal_long_after_our_last_message_to_the_chat_pauses_the_channel(tg, bot):
    now = [0.0]
    bot.recent = RecentChats(clock=lambda: now[0])
    message = bot.render(update_view(), "nl")
    await bot.send(message, Target(RESIDENT_CHAT, 1))
    now[0] += PRIVATE_CHAT_WINDOW + 1  # our clock says long ago; the API still refuses
    with pytest.raises(RetryLater) as refused:
        await bot.send(message, Target(RESIDENT_CHAT, 2))
    assert refused.value.scope == CHANNEL


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the lane, not the store
def test_one_busy_chat_does_not_slow_the_broadcast_to_everybody_else(app_factory, database_url):
    """Resident 1001 gets two updates in a row; the chat's own limit (here 1 per 15 s) refuses
    the second. The 60 residents of Plasmolen are sent to at the channel's pace meanwhile,
    with no gap, and 1001 gets the second update once the chat's wait is over."""
    with FakeTelegram() as tg, build_client(app_factory, tg, channel_id=None) as client:
        tg.state.chat_limit = SlidingWindow(1, 15.0)  # long enough for a loaded machine
        officer = token_for(client.app, "officer")
        subscribe_chat(client, officer, 1001, [])  # the whole municipality
        village = [2001 + n for n in range(60)]
        for chat in village:
            subscribe_chat(client, officer, chat, ["plasmolen"])
        incident = new_incident(client, officer, areas=["mook", "plasmolen"])
        first = post_update(client, officer, incident["id"], areas=["mook"], body="Eerste.")
        second = post_update(client, officer, incident["id"], areas=["plasmolen"], body="Twee.")
        wait_for(lambda: settled(client, first["id"], 1))
        rows = wait_for(lambda: settled(client, second["id"], 61), timeout=120)

    assert {d.state for d in rows} == {"delivered"}
    # One refusal only: a second send to 1001 before the chat's 5 s were over would have been
    # refused again, so 1001 waited as asked.
    [refused] = tg.state.rate_limited
    assert refused["chat_id"] == 1001 and refused["scope"] == "chat"
    busy = next(d for d in rows if d.attempts == 2)
    assert busy.last_error is None
    second_sends = [m for m in tg.state.sent if m.text and m.text.endswith("Twee.")]
    to_village = [m.at for m in second_sends if m.chat_id in village]
    assert len(to_village) == 60
    to_busy = next(m.at for m in second_sends if m.chat_id == 1001)
    assert to_village[-1] < to_busy  # the village did not wait for the busy chat


# --- Twilio: the per-number loop guard (14107) ------------------------------------------------


async def test_twilio_per_number_refusal_holds_that_number_and_20429_the_account(twilio):
    channel = sms_channel(twilio)
    message = channel.render(update_view("Het water stijgt."), "nl")
    try:
        twilio.state.pair_limit = HeldFromFirstLook(1, 30.0, key=NUMBER)  # texted a moment ago
        with pytest.raises(RetryLater) as refused:
            await channel.send(message, Target(NUMBER, 1))
        assert refused.value.scope == TARGET and refused.value.retry_after == 30.0
        assert "14107" in str(refused.value) and NUMBER not in str(refused.value)

        twilio.state.pair_limit = None
        twilio.state.rate_limit = HeldFromFirstLook(1, 60.0, key=twilio.account_sid)
        with pytest.raises(RetryLater) as refused:
            await channel.send(message, Target(NUMBER, 2))
        assert refused.value.scope == CHANNEL and "20429" in str(refused.value)
    finally:
        await channel.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_number_held_by_twilio_waits_alone(live, twilio, monkeypatch):
    monkeypatch.setattr("channels.sms.channel.PAIR_LIMIT_SECONDS", 2.0)
    # e.g. a sign-up code went to this number just before the update's first send to it
    twilio.state.pair_limit = HeldFromFirstLook(1, 2.0, key=NUMBER)
    app = live()
    others = [f"+3161234{n:04d}" for n in range(1, 26)]
    for number in [NUMBER, *others]:
        subscribe_number(app, number, [])
    incident = new_incident(app.http, app.officer)
    post_update(app.http, app.officer, incident["id"])
    wait_for(lambda: len(twilio.state.accepted) == 26, timeout=120)

    # (An occasional 20429 from the account's 10/s window may come on top: not this test.)
    # One 14107 only: sent again before Twilio's hold was over, the number would have been
    # refused again, so it waited as Twilio asked.
    [refused] = [r for r in twilio.state.rate_limited if r["code"] == 14107]
    assert refused["to"] == NUMBER
    at = dict(twilio.state.accepted)
    assert set(at) == {NUMBER, *others}  # each number once
    # The lane went on while the number waited (order, not gaps: a stalled lane sends nobody
    # between the refusal and the held number's turn).
    meanwhile = [n for n in others if refused["at"] < at[n] < at[NUMBER]]
    assert meanwhile, "the lane stalled until the held number could be sent"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_14107_in_the_status_callback_sends_the_message_again(live, twilio, monkeypatch):
    """As Twilio documents it: the message is accepted, then fails with 14107 while the pair is
    held. It is sent again once the hold is over and then delivered; nobody else waits."""
    monkeypatch.setitem(CALLBACK_RETRY_SECONDS, 14107, 2.0)
    twilio.state.pair_limit = HeldFromFirstLook(1, 2.0, key=NUMBER)  # texted a moment ago
    twilio.state.pair_limit_in_callback = True
    app = live()
    subscribe_number(app, NUMBER, [])
    subscribe_number(app, "+31612340001", [])
    incident = new_incident(app.http, app.officer)
    update = post_update(app.http, app.officer, incident["id"])

    wait_for(lambda: counts(app, update).get("sms") == {"delivered": 2}, timeout=120)
    with app.app.state.db.session_scope() as session:
        query = select(Delivery).where(Delivery.channel == "sms")
        rows = {d.attempts: d for d in session.exec(query)}
    assert set(rows) == {1, 2}  # the other number once, the held one twice
    assert rows[2].last_error is None and rows[2].provider_id == twilio.state.messages[-1]["sid"]
    first, again = [m for m in twilio.state.messages if m["to"] == NUMBER]
    failed = [c for c in twilio.state.callbacks if c.params["MessageSid"] == first["sid"]]
    assert [(c.params["MessageStatus"], c.params.get("ErrorCode")) for c in failed] == [
        ("failed", "14107")
    ]
    # One refusal only: a resend while the pair was held would have failed again with 14107.
    [refused] = twilio.state.rate_limited
    assert refused["to"] == NUMBER and dict(twilio.state.accepted)[NUMBER]
