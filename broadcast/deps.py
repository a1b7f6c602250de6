"""FastAPI dependency aliases: the session of a request, the caller and the roles it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from sqlmodel import Session

from broadcast.auth.models import Role, User
from broadcast.auth.service import user_for_token
from broadcast.errors import DomainError, Forbidden, NotFound, Unauthorized
from broadcast.settings import Settings
from broadcast.web.i18n import _

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


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The one error shape, ``{"detail": ...}``, with the headers the error calls for."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    if (retry_after := getattr(exc, "retry_after", None)) is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
