"""The registry is how the core learns of an adapter: a channel registered through the entry
point group alone (the pigeon of tests/fakes/pigeon.py) is previewed in the console and gets
every published update from the dispatcher, without the core naming it anywhere."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from fastapi.testclient import TestClient

from channels import registry
from tests.fakes.pigeon import LOFT, NOTE_CHARS, PigeonChannel
from tests.support import (
    auth,
    console_headers,
    console_log_in,
    new_incident,
    post_update,
    token_for,
    wait_for,
)

RESIDENT_FACING = {"sms", "whatsapp", "telegram", "mastodon", "email", "facebook"}


@pytest.fixture
def pigeon_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pigeon joins the installed entry points, as installing a plugin package would."""
    installed = registry.entry_points
    pigeon = EntryPoint("pigeon", "tests.fakes.pigeon:PigeonChannel", registry.GROUP)
    monkeypatch.setattr(
        registry, "entry_points", lambda *, group: (*installed(group=group), pigeon)
    )


@pytest.fixture
def discovered(pigeon_registered, app_factory):
    """The application with the adapters the registry finds, the pigeon among them."""
    with TestClient(app_factory(channel_classes=None)) as client:
        yield client


def test_the_built_in_adapters_that_residents_read_are_previewed():
    found, broken = registry.discover()
    assert broken == {}
    assert {name for name, cls in found.items() if cls.previewed} == RESIDENT_FACING


def test_discovery_finds_an_adapter_by_its_entry_point(pigeon_registered):
    found, broken = registry.discover()
    assert found["pigeon"] is PigeonChannel and broken == {}
    assert {name for name, cls in found.items() if cls.previewed} == RESIDENT_FACING | {"pigeon"}


def test_a_registered_adapter_shows_up_in_the_console_preview(discovered):
    token_for(discovered.app, "officer", name="lotte")
    assert console_log_in(discovered, "lotte").status_code == 303
    response = discovered.post(
        "/console/preview",
        data={"body_nl": "Zandzakken liggen bij de brandweerkazerne. " * 5, "severity": "info"},
        headers=console_headers(discovered),
    )
    assert response.status_code == 200, response.text
    previews = {p["channel"]: p for p in response.json()["channels"]}
    assert previews.keys() == RESIDENT_FACING | {"pigeon"}  # not the public page, not webhooks
    pigeon = previews["pigeon"]
    assert pigeon["active"] and pigeon["shortened"] and pigeon["unit"] == "chars"
    assert pigeon["limit"] == NOTE_CHARS and pigeon["length"] <= NOTE_CHARS
    assert not previews["sms"]["active"]  # previewed with its defaults, though not configured


def test_a_registered_adapter_is_dispatched_every_published_update(discovered):
    token = token_for(discovered.app, "officer")
    incident = new_incident(discovered, token)
    update = post_update(discovered, token, incident["id"], body="De dijk bij Mook houdt.")

    def pigeon_counts():
        path = f"/api/v1/updates/{update['id']}/deliveries"
        return discovered.get(path, headers=auth(token)).json().get("pigeon")

    assert wait_for(lambda: pigeon_counts() == {"delivered": 1})
    [(message, target)] = discovered.app.state.channels["pigeon"].carried
    assert message.update_id == update["id"] and "De dijk bij Mook houdt." in message.text
    assert target.address == LOFT


def test_a_registered_adapter_with_a_subscribe_link_is_offered_on_the_sign_up_page(discovered):
    page = discovered.get("/subscribe").text
    assert "<h2" in page and "Postduif</h2>" in page
    assert "https://duiven.example/aanmelden?postcode=" in page  # the whole municipality
    assert "Telegram</h2>" not in page  # Telegram has no bot name here, so no link to offer
