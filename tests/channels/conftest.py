"""Fixtures shared by the channel tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import WEBHOOK_SECRET
from tests.support import LiveApp, sms_config


@pytest.fixture
def question_fails_once(monkeypatch):
    """``question_fails_once(hooks)``: the core's first ``question`` call fails as if the
    database were unreachable, and stored messages are due again at once. Returns the list of
    the inbound keys that failed."""

    def install(hooks) -> list[str]:
        real_question, failures = hooks.question, []

        async def failing_once(**fields):
            if not failures:
                failures.append(fields["inbound_key"])
                raise OSError("database unreachable")
            return await real_question(**fields)

        monkeypatch.setattr(hooks, "question", failing_once)
        monkeypatch.setattr(hooks, "lease", timedelta(0))
        return failures

    return install


@pytest.fixture
def live(app_factory, twilio):
    """``live(**settings)``: the app on a real port with the SMS and WhatsApp channels pointed
    at the Twilio stand-in, whose signed status callbacks reach it."""
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel, WhatsAppChannel
    from channels.webhook import WebhookChannel

    twilio.state.callback_delay = 0.3  # as real ones: a callback before the recorder is lost

    def start(**overrides) -> LiveApp:
        def build(public_url: str):
            return app_factory(
                public_url=public_url,
                channel_classes=[PlatformChannel, WebhookChannel, SmsChannel, WhatsAppChannel],
                channels={
                    "webhook": {"secret": WEBHOOK_SECRET},
                    "sms": sms_config(twilio),
                    "whatsapp": sms_config(twilio),
                },
                **overrides,
            )

        app = LiveApp(build).__enter__()
        started.append(app)
        return app

    started: list[LiveApp] = []
    yield start
    for app in started:
        app.__exit__(None, None, None)
