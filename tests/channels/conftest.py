"""Fixtures shared by the channel tests."""

from __future__ import annotations

from datetime import timedelta

import pytest


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
