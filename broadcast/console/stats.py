"""Figures the console shows: how long residents wait for an answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from broadcast.common import utcnow
from broadcast.questions import service as questions
from broadcast.questions.models import Question, QuestionState

WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class ResponseTimes:
    answered: int
    median_minutes: float | None
    p90_minutes: float | None
    waiting: int
    oldest_waiting_minutes: float | None


def response_times(session: Session) -> ResponseTimes:
    now = utcnow()
    answered = session.exec(
        select(Question.received_at, Question.answered_at).where(
            Question.state == QuestionState.answered, col(Question.answered_at) >= now - WINDOW
        )
    ).all()
    minutes = sorted((done - asked).total_seconds() / 60 for asked, done in answered if done)
    waiting, oldest = questions.waiting(session)
    return ResponseTimes(
        answered=len(minutes),
        median_minutes=_quantile(minutes, 0.5),
        p90_minutes=_quantile(minutes, 0.9),
        waiting=waiting,
        oldest_waiting_minutes=(now - oldest).total_seconds() / 60 if oldest else None,
    )


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]
