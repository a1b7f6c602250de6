"""The contract every channel adapter passes (cases in tests/channels/contract.py): each provider
answer becomes one classified outcome, a rendered message fits the declared limits, settings are
validated, and nonsense from a provider is a classified error, never a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from channels.base import Channel, Receipt
from channels.errors import (
    CHANNEL,
    TARGET,
    ChannelError,
    NotConfigured,
    PermanentFailure,
    RecipientGone,
    RetryLater,
    TargetMoved,
)
from tests.channels.contract import (
    CASES,
    HOSTILE_ANSWERS,
    AdapterCase,
    closed_port_url,
    hostile_provider,
    update,
)

LONG_BODY = "Zandzakken bij de brandweer, ‘graag’ één per huishouden. 🌊 " * 120


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> AdapterCase:
    return request.param


@pytest.fixture
async def running(case: AdapterCase) -> AsyncIterator[tuple[Any, Channel]]:
    """The case's stand-in provider and the adapter pointed at it, started."""
    with case.provider() as fake:
        adapter = case.build(case.settings(fake))
        await adapter.start()
        try:
            yield fake, adapter
        finally:
            await adapter.close()


async def outcome_of(case: AdapterCase, outcome: str, running) -> BaseException:
    """Arrange the stand-in to answer as ``outcome`` and return what ``send`` raised."""
    if reason := case.cannot.get(outcome):
        pytest.skip(f"{case.id} cannot answer {outcome}: {reason}")
    fake, adapter = running
    target = await getattr(case, f"arrange_{outcome}")(fake, adapter)
    with pytest.raises(ChannelError) as raised:
        await adapter.send(adapter.render(update(), "nl"), target)
    return raised.value


# --- provider answer -> outcome -------------------------------------------------------------


async def test_an_accepted_message_is_sent_with_the_provider_id(case, running):
    fake, adapter = running
    target = await case.arrange_sent(fake, adapter)
    receipt = await adapter.send(adapter.render(update(), "nl"), target)
    assert isinstance(receipt, Receipt)
    assert receipt.provider_id is not None and receipt.provider_id == case.provider_id(fake)


async def test_a_limit_of_the_whole_channel_is_retry_later_for_the_channel(case, running):
    error = await outcome_of(case, "retry_channel", running)
    assert type(error) is RetryLater and error.scope == CHANNEL
    if reason := case.no_retry_after.get("retry_channel"):
        assert error.retry_after is None, reason
    else:
        assert error.retry_after is not None and error.retry_after > 0


async def test_a_limit_of_one_recipient_is_retry_later_for_that_target(case, running):
    error = await outcome_of(case, "retry_target", running)
    assert type(error) is RetryLater and error.scope == TARGET
    assert error.retry_after is not None and error.retry_after > 0


async def test_a_recipient_who_left_is_gone(case, running):
    error = await outcome_of(case, "gone", running)
    assert type(error) is RecipientGone


async def test_a_target_with_a_new_address_moved(case, running):
    error = await outcome_of(case, "moved", running)
    assert type(error) is TargetMoved and error.new_address


async def test_a_refusal_for_good_is_a_permanent_failure_not_gone(case, running):
    error = await outcome_of(case, "failed", running)
    assert type(error) is PermanentFailure


async def test_an_unreachable_provider_is_retry_later(case):
    if case.cannot_hostile:
        pytest.skip(f"{case.id}: {case.cannot_hostile}")
    url = closed_port_url()
    adapter = case.build(case.settings_at(url))
    try:
        with pytest.raises(RetryLater):
            await adapter.send(adapter.render(update(), "nl"), case.hostile_target(url))
    finally:
        await adapter.close()


@pytest.mark.parametrize("answer", list(HOSTILE_ANSWERS))
async def test_a_malformed_or_oversized_answer_is_classified_not_a_crash(case, answer):
    if case.cannot_hostile:
        pytest.skip(f"{case.id}: {case.cannot_hostile}")
    with hostile_provider(answer) as provider:
        adapter = case.build(case.settings_at(provider.url))
        try:
            result = await adapter.send(
                adapter.render(update(), "nl"), case.hostile_target(provider.url)
            )
        except ChannelError:
            return  # classified: the core knows what to do with it
        finally:
            await adapter.close()
    # Only a provider whose answer carries nothing the adapter needs may call it sent.
    assert isinstance(result, Receipt) and case.ignores_answer_body, result


# --- render and settings --------------------------------------------------------------------


def test_a_long_update_is_rendered_within_the_declared_limits(case, running):
    fake, adapter = running
    limit = case.limit(adapter)
    message = adapter.render(update(LONG_BODY), "nl")
    if limit is None:
        assert LONG_BODY.strip() in message.text
        pytest.skip(f"{case.id} declares no length limit: the whole update goes")
    assert case.measure(message) <= limit
    assert message.shortened and update().url in message.text


async def test_the_longest_rendered_message_is_accepted_by_the_provider(case, running):
    fake, adapter = running
    target = await case.arrange_sent(fake, adapter)
    receipt = await adapter.send(adapter.render(update(LONG_BODY), "nl"), target)
    assert receipt.provider_id == case.provider_id(fake)


def test_without_credentials_the_channel_stays_off(case):
    with pytest.raises(NotConfigured):
        case.build_unconfigured()


def test_invalid_settings_are_refused(case):
    if not case.invalid:
        pytest.skip(f"{case.id} has no settings of its own to get wrong")
    with pytest.raises(ValidationError):
        case.channel_class.Settings.model_validate(case.invalid)
