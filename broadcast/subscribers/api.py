from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from broadcast.common import DEFAULT_LANGUAGE, Code, Language, PlainText, Severity
from broadcast.deps import BODY, ROLE, Id, Officer, SessionDep, SettingsDep, errors
from broadcast.subscribers import service
from broadcast.subscribers.models import SubscriberState

router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])


class SubscriberCreate(BaseModel):
    channel: Code = Field(min_length=1)
    address: PlainText = Field(min_length=1, max_length=500)
    areas: list[Code] = Field(default=[], max_length=500)
    language: Language = DEFAULT_LANGUAGE
    min_severity: Severity = Severity.info
    tester: bool = Field(
        default=False,
        description="In the test audience: receives exercises, which reach only testers unless "
        "an officer widened the exercise (`exercise_widened` on the incident)",
    )


class SubscriberOut(BaseModel):
    id: int
    channel: str
    language: Language
    min_severity: Severity
    state: SubscriberState
    tester: bool
    areas: list[str]
    consent_at: datetime | None
    created_at: datetime


def subscriber_out(session, subscriber) -> dict:
    return subscriber.model_dump(exclude={"address"}) | {
        "areas": service.area_codes(session, subscriber.id)
    }


@router.post(
    "",
    status_code=201,
    response_model=SubscriberOut,
    responses=errors(*ROLE, 409, *BODY),
    description="Add a subscriber the municipality registered (consent given elsewhere).",
)
def create_subscriber(data: SubscriberCreate, session: SessionDep, user: Officer, request: Request):
    subscriber = service.subscribe(
        session,
        channels=request.app.state.channels,
        channel=data.channel,
        address=data.address,
        area_codes=data.areas,
        language=data.language,
        min_severity=data.min_severity,
        tester=data.tester,
        actor=user.name,
    )
    return subscriber_out(session, subscriber)


@router.get("/{subscriber_id}", response_model=SubscriberOut, responses=errors(*ROLE, 404, 422))
def get_subscriber(subscriber_id: Id, session: SessionDep, user: Officer):
    return subscriber_out(session, service.get(session, subscriber_id))


@router.delete(
    "/{subscriber_id}",
    status_code=204,
    response_class=Response,
    responses=errors(*ROLE, 404, 422),
    description="Erase the subscriber and their personal data.",
)
def delete_subscriber(subscriber_id: Id, session: SessionDep, user: Officer, settings: SettingsDep):
    subscriber = service.get(session, subscriber_id)
    service.erase(session, subscriber, actor=user.name, settings=settings)
