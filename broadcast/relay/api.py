from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from broadcast.common import DEFAULT_LANGUAGE, Code, Language, PlainText
from broadcast.deps import AUTH, BODY, ROLE, Id, Member, Officer, SessionDep, SettingsDep, errors
from broadcast.relay import kit, service

router = APIRouter(prefix="/api/v1", tags=["relay"])


class KitFormat(BaseModel):
    key: str = Field(description="whatsapp, facebook, neighbourhood or sms")
    label: str
    text: str = Field(description="Ready to copy and forward")
    length: int = Field(description="Characters; GSM-7 septets for sms")
    limit: int


class RelayKit(BaseModel):
    update_id: int
    language: Language
    link: str = Field(description="The short, stable link to the update")
    formats: list[KitFormat]


class RelayCreate(BaseModel):
    format: Code = Field(
        description="The kit format that was forwarded: " + ", ".join(kit.FORMAT_KEYS)
    )
    where: PlainText | None = Field(
        default=None, max_length=200, description="Free text, e.g. 'WhatsApp-groep Molenhoek-Noord'"
    )
    areas: list[Code] = Field(
        default_factory=list, max_length=500, description="Area codes the audience lives in"
    )


class RelayOut(BaseModel):
    id: int
    update_id: int
    user_id: int
    volunteer: str = Field(description="The name the member is credited with")
    format: str
    where: str | None
    areas: list[str]
    at: datetime


class RelayReport(BaseModel):
    update_id: int
    total: int
    by_area: dict[str, int] = Field(description="Relays per area code")
    without_area: int = Field(description="Relays that named no area")
    by_format: dict[str, int]
    relays: list[RelayOut]


def relay_out(relay, user) -> RelayOut:
    return RelayOut(
        id=relay.id,
        update_id=relay.update_id,
        user_id=relay.user_id,
        volunteer=user.credit_name,
        format=relay.format,
        where=relay.place,
        areas=relay.areas,
        at=relay.at,
    )


@router.get(
    "/updates/{update_id}/relay-kit",
    response_model=RelayKit,
    summary="Ready-to-forward texts of a published update",
    responses=errors(*AUTH, 404, 409, 422),
    description="WhatsApp (bold headline, ≤ 700 characters), Facebook, neighbourhood apps "
    "(≤ 280) and SMS (one GSM-7 message), each ending with the short link. 409 when the update "
    "is not published, was corrected (relay the correction) or is a private answer.",
)
def relay_kit(
    update_id: Id,
    session: SessionDep,
    user: Member,
    settings: SettingsDep,
    lang: Annotated[Language, Query(description="nl or en")] = DEFAULT_LANGUAGE,
):
    texts = service.kit_for(
        session, update_id, viewer=user, language=lang.value, public_url=settings.public_url
    )
    link = f"{settings.public_url.rstrip('/')}/u/{update_id}"
    formats = [
        KitFormat(key=t.key, label=t.label, text=t.text, length=t.length, limit=t.limit)
        for t in texts
    ]
    return RelayKit(update_id=update_id, language=lang, link=link, formats=formats)


@router.post(
    "/updates/{update_id}/relayed",
    status_code=201,
    response_model=RelayOut,
    summary="Record that a member forwarded an update (where, to which areas)",
    responses=errors(*AUTH, 404, 409, *BODY),
)
def relayed(update_id: Id, data: RelayCreate, session: SessionDep, user: Member):
    relay = service.record(
        session,
        update_id,
        user=user,
        format=data.format,
        place=data.where,
        area_codes=data.areas,
    )
    return relay_out(relay, user)


@router.get(
    "/updates/{update_id}/relays",
    response_model=RelayReport,
    summary="Who relayed an update where, with counts per area (officers)",
    responses=errors(*ROLE, 404, 422),
)
def relays(update_id: Id, session: SessionDep, user: Officer):
    rows = service.relays_of(session, update_id)
    by_area, by_format, without_area = service.counts([relay for relay, _ in rows])
    return RelayReport(
        update_id=update_id,
        total=len(rows),
        by_area=by_area,
        without_area=without_area,
        by_format=by_format,
        relays=[relay_out(relay, who) for relay, who in rows],
    )
