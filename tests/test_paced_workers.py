"""Provider limits across processes (#12 item 1): three ``broadcast worker`` processes on the
local PostgreSQL send SMS through the Twilio stand-in and Telegram messages through the Telegram
stand-in, each stand-in in a process of its own with the provider's published limits (10/s for
the account; 30/s for the bot and 1/s per chat). One worker at a time owns each paced lane.

- A fan-out reaches everybody exactly once and neither stand-in refuses one request for being
  too fast.
- The worker owning the SMS lane is killed with SIGKILL in the middle of a fan-out: another one
  takes the lane, everybody is reached, re-sends stay within the lane's concurrency, and still
  nothing is refused.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT, _truncate_postgres
from tests.fakes.process import StandInProcess
from tests.support import (
    CliProcess,
    add_subscribers,
    auth,
    delivery_states,
    service_env,
    token_for,
    wait_for,
)

SMS, CHATS = 300, 150
SENDER = "+3197010000000"
SMS_CONCURRENCY = 8  # channels/sms/channel.py: what can be in flight when a worker dies
FINAL = ("sent", "delivered")


def numbers() -> list[str]:
    return [f"+3161{n:07d}" for n in range(SMS)]


def chats() -> list[str]:
    return [str(5_000_000 + n) for n in range(CHATS)]


def channel_settings(twilio: StandInProcess, telegram: StandInProcess) -> dict:
    return {
        "sms": {
            "account_sid": twilio.info["account_sid"],
            "auth_token": twilio.info["auth_token"],
            "from": SENDER,
            "api_url": twilio.url,
            "status_callback": False,
        },
        "telegram": {"bot_token": telegram.token, "api_url": telegram.url},
    }


def finished(database_url: str, update_id: int, expected: dict[str, int]) -> bool:
    states = delivery_states(database_url, update_id)
    return all(sum(states[(channel, s)] for s in FINAL) == n for channel, n in expected.items())


def owners(workers: dict[str, CliProcess], channel: str) -> list[str]:
    """The running workers that took the channel's lane and have not lost or released it."""
    took, lost = f"took the {channel} lane", f"lost the {channel} lane"
    found = []
    for name, worker in workers.items():
        log = worker.log()
        if worker.running() and log.rfind(took) > max(
            log.rfind(lost), log.rfind(f"released the {channel} lane")
        ):
            found.append(name)
    return found


@pytest.fixture(scope="module")
def paced(_postgres_schema, tmp_path_factory):
    if _postgres_schema is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    from broadcast.app import create_app
    from broadcast.settings import Settings
    from channels.platform import PlatformChannel
    from channels.sms import SmsChannel
    from channels.telegram import TelegramChannel

    _truncate_postgres(_postgres_schema)
    tmp = tmp_path_factory.mktemp("paced-workers")
    with StandInProcess("twilio") as twilio, StandInProcess("telegram") as telegram:
        channels = channel_settings(twilio, telegram)
        add_subscribers(
            _postgres_schema, [("sms", a) for a in numbers()] + [("telegram", a) for a in chats()]
        )
        env = service_env(
            _postgres_schema,
            BROADCAST_CHANNELS_ENABLED="sms,telegram",
            BROADCAST_CHANNELS=json.dumps(channels),
            BROADCAST_MEDIA_DIR=str(tmp / "media"),
        )
        workers = {
            f"worker-{n}": CliProcess(f"worker-{n}", ["broadcast", "worker"], env, tmp)
            for n in (1, 2, 3)
        }
        # The officers' side, in this process without a dispatcher: it only publishes.
        settings = Settings(
            database_url=_postgres_schema,
            areas_file=ROOT / "config" / "areas.toml",
            media_dir=tmp / "media",
            log_json=False,
            channels_enabled=["sms", "telegram"],
            channels=channels,
        )
        app = create_app(
            settings,
            dispatch=False,
            schedule=False,
            channel_classes=[PlatformChannel, SmsChannel, TelegramChannel],
        )
        try:
            with TestClient(app) as client:
                client.headers.update(auth(token_for(app, "officer")))
                for worker in workers.values():
                    wait_for(worker.ready, timeout=180, interval=0.2)
                wait_for(lambda: owners(workers, "sms") and owners(workers, "telegram"), 120)
                yield {
                    "client": client,
                    "workers": workers,
                    "twilio": twilio,
                    "telegram": telegram,
                    "database_url": _postgres_schema,
                }
        finally:
            for worker in workers.values():
                worker.stop()


def publish(client, body: str) -> int:
    incident = client.post(
        "/api/v1/incidents", json={"title": "Hoogwater Maas", "severity": "warning"}
    )
    assert incident.status_code == 201, incident.text
    update = client.post(f"/api/v1/incidents/{incident.json()['id']}/updates", json={"body": body})
    assert update.status_code == 201, update.text
    return update.json()["id"]


def test_three_workers_send_within_the_providers_limits(paced):
    client, url = paced["client"], paced["database_url"]
    twilio, telegram = paced["twilio"], paced["telegram"]
    assert len(owners(paced["workers"], "sms")) == 1
    assert len(owners(paced["workers"], "telegram")) == 1

    update = publish(client, "Zandzakken bij de brandweerkazerne.")
    wait_for(lambda: finished(url, update, {"sms": SMS, "telegram": CHATS}), 600, 0.5)

    assert twilio.refusals() == [] and telegram.refusals() == []
    assert Counter(twilio.recipients()) == Counter(numbers())  # everybody, once
    assert Counter(telegram.recipients()) == Counter(chats())
    states = delivery_states(url, update)
    assert sum(states.values()) == SMS + CHATS
    assert len(owners(paced["workers"], "sms")) == 1  # nobody lost or shared a lane meanwhile
    assert len(owners(paced["workers"], "telegram")) == 1


def test_killing_the_sms_lanes_owner_hands_the_lane_to_another_worker(paced):
    client, url, workers = paced["client"], paced["database_url"], paced["workers"]
    twilio, telegram = paced["twilio"], paced["telegram"]
    before = len(twilio.recipients())
    (owner,) = owners(workers, "sms")

    update = publish(client, "Verlaat uw woning via de Rijksweg.")
    wait_for(lambda: len(twilio.recipients()) >= before + SMS // 3, 600, 0.05)
    workers[owner].kill()

    wait_for(lambda: finished(url, update, {"sms": SMS, "telegram": CHATS}), 600, 0.5)
    (successor,) = owners(workers, "sms")
    assert successor != owner
    sent = Counter(twilio.recipients()[before:])
    assert set(sent) == set(numbers())  # everybody reached
    assert sum(sent.values()) - SMS <= SMS_CONCURRENCY  # only what was in flight went twice
    assert twilio.refusals() == [] and telegram.refusals() == []
    assert set(Counter(telegram.recipients())) == set(chats())
