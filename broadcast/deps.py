"""FastAPI dependency aliases: the session of a request, the caller and the roles it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlmodel import Session

from broadcast import paging
from broadcast.auth.models import Role, User
from broadcast.auth.service import user_for_token
from broadcast.errors import DomainError, Forbidden, NotFound, Unauthorized
from broadcast.i18n import _
from broadcast.settings import Settings

# Row ids are PostgreSQL ``integer`` (SQLite takes 64 bits): a larger number names nothing, and
# must not reach the database, where it raises instead of finding nothing.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]  # a row id in a path, query, form or body


NOTHING_BY_THAT_NAME = {
    "greater_than_equal",
    "less_than_equal",
    "string_too_long",
    "too_long",
    "value_error",
}


def unknown_path(exc: RequestValidationError) -> NotFound | None:
    """A path whose only fault is a value no row can have (an id out of range, a slug with a
    control character) asks for something that does not exist: 404, as for any other id or
    slug nobody has (``/u/99999999999``), not 422. A malformed id (``/u/abc``) stays 422."""
    errors = exc.errors()
    if errors and all(e["loc"][0] == "path" and e["type"] in NOTHING_BY_THAT_NAME for e in errors):
        return NotFound(_("not found"))
    return None


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.session_scope() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def client_address(request: Request) -> str:
    """The client's IP address: the connecting one, or behind a proxy named in
    ``BROADCAST_FORWARDED_ALLOW_IPS`` the one it forwarded (uvicorn's proxy headers, see
    ``broadcast serve``)."""
    return request.client.host if request.client else ""


# scope="function": commit before the response is sent, so a 201 always means "stored".
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
_bearer = HTTPBearer(auto_error=False, description="API token from `broadcast user add`")


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized("a bearer token is required")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise Unauthorized("invalid or revoked token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(*roles: Role):
    def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden(f"role {user.role} may not do this")
        return user

    return Depends(check)


Officer = Annotated[User, require(Role.officer, Role.admin)]
Member = Annotated[User, require(Role.officer, Role.admin, Role.volunteer)]


class Problem(BaseModel):
    """One problem with the input, as FastAPI's validation reports it."""

    loc: list[str | int] = Field(description='Where: ["body", "areas", 0], ["query", "limit"]')
    msg: str
    type: str


class ErrorOut(BaseModel):
    """The one error body of every endpoint."""

    detail: str | list[Problem] = Field(
        description="What went wrong: a sentence, or (422 for input that does not match the "
        "schema) one item per problem"
    )
    placeholders: list[str] | None = Field(
        default=None,
        description="422 for a text that still holds a template's blanks (`[weg]`): their "
        'names, e.g. ["weg", "tijd"]; it cannot be published, scheduled or approved until they '
        "are filled in (a draft may keep them)",
    )


_ERRORS = {
    400: "The body cannot be read (not UTF-8, not the declared content type)",
    401: "No valid bearer token",
    403: "The caller's role may not do this",
    404: "Not found",
    409: "The current state does not allow this",
    413: "The request body is too large",
    415: "Not an accepted media type",
    422: "Invalid input",
    429: "Too many requests (Retry-After: the seconds to wait, where waiting helps)",
    503: "A channel this needs is off",
}
_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "Bearer",
            "required": True,
        }
    },
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
}


def errors(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` for the error statuses an operation can answer, all ``ErrorOut``."""
    return {
        status: {"model": ErrorOut, "description": _ERRORS[status]}
        | ({"headers": _HEADERS[status]} if status in _HEADERS else {})
        for status in statuses
    }


# The statuses that come with a kind of operation (add 404 for a path id, 409 for a change).
AUTH = (401,)  # a bearer token, any role
ROLE = (401, 403)  # a bearer token of a role that is allowed
BODY = (400, 413, 422)  # a JSON body


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The one error shape, ``{"detail": ...}``, with the headers the error calls for."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if (retry_after := getattr(exc, "retry_after", None)) is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"detail": exc.detail, **exc.extra}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


# --- pagination (see broadcast.paging) ------------------------------------------------------

Limit = Annotated[
    int,
    Query(
        ge=1,
        le=paging.MAX_LIMIT,
        description=f"Items per page (default {paging.DEFAULT_LIMIT}, at most "
        f"{paging.MAX_LIMIT}; more is 422)",
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Opaque: the `next_cursor` of the previous page (also in its `Link: "
        '<…>; rel="next"` header); absent: the first page',
    ),
]
PAGED = (
    " Newest first, paginated by cursor: at most `limit` items; while there are more, the "
    'response carries `X-Next-Cursor: <cursor>` and `Link: <url>; rel="next"` (the same '
    "query with `cursor`), absent on the last page. Items added meanwhile never shift a page."
)
PAGE_HEADERS: dict[int | str, dict] = {
    200: {
        "description": "One page",
        "headers": {
            "X-Next-Cursor": {
                "schema": {"type": "string"},
                "description": "The cursor of the next page; absent on the last page",
            },
            "Link": {
                "schema": {"type": "string"},
                "description": 'RFC 8288: `<url of the next page>; rel="next"`',
            },
        },
    }
}


def next_page(request: Request, response: Response, next_cursor: str | None) -> None:
    """Point at the next page in the headers (a list body stays a plain list)."""
    if next_cursor is None:
        return
    url = request.url.include_query_params(cursor=next_cursor)
    response.headers["X-Next-Cursor"] = next_cursor
    response.headers["Link"] = f'<{url}>; rel="next"'
