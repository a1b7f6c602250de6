"""``/api/v1/signup/sms``: the JSON side of the public SMS sign-up form, and
``/api/v1/signup/push``: a browser's push subscription (no token needed for either)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from broadcast.common import DEFAULT_LANGUAGE, Code, Language, PlainText, stored_id
from broadcast.deps import BODY, SessionDep, client_address, domain_error_response, errors
from broadcast.signup import browsers, service

router = APIRouter(prefix="/api/v1/signup/sms", tags=["sign-up"])
push_router = APIRouter(prefix="/api/v1/signup/push", tags=["sign-up"])


class CodeRequest(BaseModel):
    phone: PlainText = Field(min_length=1, max_length=40)
    postcode: PlainText | None = Field(default=None, max_length=10)
    areas: list[Code] | None = Field(default=None, max_length=500)
    language: Language = DEFAULT_LANGUAGE


class CodeSent(BaseModel):
    status: str = "code_sent"
    expires_in: int  # seconds the code is valid


class CodeConfirmation(BaseModel):
    phone: PlainText = Field(min_length=1, max_length=40)
    code: PlainText = Field(min_length=1, max_length=12)


class Subscribed(BaseModel):
    status: str = "subscribed"
    areas: list[str]
    language: Language


@router.post(
    "",
    status_code=202,
    response_model=CodeSent,
    responses=errors(*BODY, 429, 503),
    description="Send a six-digit code by SMS (429 with Retry-After when a limit is reached).",
)
def request_code(data: CodeRequest, session: SessionDep, request: Request):
    service.request_code(
        session,
        settings=request.app.state.settings,
        channels=request.app.state.channels,
        phone=data.phone,
        client=client_address(request),
        postcode=data.postcode,
        area_codes=data.areas,
        language=data.language,
    )
    return CodeSent(expires_in=int(service.CODE_TTL.total_seconds()))


@router.post(
    "/confirm",
    status_code=201,
    response_model=Subscribed,
    responses=errors(*BODY, 429, 503),
    description="Subscribe the number with the code it received.",
)
def confirm(data: CodeConfirmation, session: SessionDep, request: Request):
    result = service.confirm(
        session,
        settings=request.app.state.settings,
        channels=request.app.state.channels,
        phone=data.phone,
        code=data.code,
    )
    if result.problem is not None:  # answered, not raised: the wrong attempt must be committed
        return domain_error_response(result.problem)
    subscriber = result.subscriber
    assert subscriber is not None
    areas = service.subscribers.area_codes(session, stored_id(subscriber))
    return Subscribed(areas=areas, language=subscriber.language)


class PushKeys(BaseModel):
    p256dh: PlainText = Field(min_length=1, max_length=200)  # base64url, 65-byte P-256 point
    auth: PlainText = Field(min_length=1, max_length=100)  # base64url, 16 bytes


class PushSubscription(BaseModel):
    """What ``PushSubscription.toJSON()`` gives a page (``expirationTime`` is ignored)."""

    endpoint: PlainText = Field(min_length=1, max_length=400)
    keys: PushKeys


class PushSignup(BaseModel):
    subscription: PushSubscription
    areas: list[Code] | None = Field(default=None, max_length=500)
    language: Language = DEFAULT_LANGUAGE


class PushEndpoint(BaseModel):
    endpoint: PlainText = Field(min_length=1, max_length=400)


@push_router.post(
    "",
    status_code=201,
    response_model=Subscribed,
    responses=errors(*BODY, 429, 503),
    description="Subscribe a browser's push subscription to updates for the areas (none: the "
    "whole municipality). The same endpoint again is the same subscriber, with these areas, "
    "language and keys. 422 for keys that cannot be used or an endpoint that is not https on "
    "a public address; 429 with Retry-After when a limit is reached; 503 while push is off.",
)
def push_subscribe(data: PushSignup, session: SessionDep, request: Request):
    subscriber = browsers.subscribe(
        session,
        settings=request.app.state.settings,
        channels=request.app.state.channels,
        endpoint=data.subscription.endpoint,
        p256dh=data.subscription.keys.p256dh,
        auth=data.subscription.keys.auth,
        client=client_address(request),
        area_codes=data.areas,
        language=data.language,
    )
    areas = service.subscribers.area_codes(session, stored_id(subscriber))
    return Subscribed(areas=areas, language=subscriber.language)


@push_router.post(
    "/unsubscribe",
    status_code=204,
    response_class=Response,
    responses=errors(*BODY),
    description='Unsubscribe the browser with this endpoint (the page\'s "Meldingen uit"): its '
    "subscriber is erased. 204 also when the endpoint was not subscribed.",
)
def push_unsubscribe(data: PushEndpoint, session: SessionDep, request: Request):
    browsers.unsubscribe(session, settings=request.app.state.settings, endpoint=data.endpoint)
    return Response(status_code=204)
