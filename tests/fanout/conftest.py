"""The application started without a dispatcher: its database (areas loaded) and channels
(platform and webhook), for calling fan-out functions directly."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from broadcast.db import Database
from broadcast.delivery.adapters import ChannelSet
from broadcast.settings import Settings


@dataclass
class Store:
    db: Database
    channels: ChannelSet
    settings: Settings


@pytest.fixture
def store(app_factory):
    with TestClient(app_factory(dispatch=False, public_url="https://crisis.example.nl/")) as client:
        state = client.app.state
        yield Store(state.db, state.channels, state.settings)
