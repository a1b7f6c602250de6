"""Figures the console shows: how long residents wait for an answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, func, select

from broadcast.common import utcnow
from broadcast.questions.models import Question, QuestionState

WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class ResponseTimes:
    answered: int
    median_minutes: float | None
    p90_minutes: float | None
    waiting: int
    oldest_waiting_minutes: float | None


def waiting_questions(session: Session) -> int:
    waiting = select(func.count()).where(Question.state == QuestionState.new)
    return session.exec(waiting).one()


def response_times(session: Session) -> ResponseTimes:
    now = utcnow()
    answered = session.exec(
        select(Question.received_at, Question.answered_at).where(
            Question.state == QuestionState.answered, col(Question.answered_at) >= now - WINDOW
        )
    ).all()
    minutes = sorted((done - asked).total_seconds() / 60 for asked, done in answered if done)
    oldest = session.exec(
        select(Question.received_at)
        .where(Question.state == QuestionState.new)
        .order_by(col(Question.received_at))
    ).all()
    return ResponseTimes(
        answered=len(minutes),
        median_minutes=_quantile(minutes, 0.5),
        p90_minutes=_quantile(minutes, 0.9),
        waiting=len(oldest),
        oldest_waiting_minutes=(now - oldest[0]).total_seconds() / 60 if oldest else None,
    )


def _quantile(values: list[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(q * len(values) + 0.5) - 1))]
