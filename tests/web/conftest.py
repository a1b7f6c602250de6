"""Shared by the browser tests of the public site and the console."""

from __future__ import annotations

import pytest

from tests.support import chromium


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (tests/support.chromium: generous time-outs)."""
    with chromium() as browser:
        yield browser
