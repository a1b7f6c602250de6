"""The administrators' page of users: add, change role, reset the password, replace the API
token (shown once, on the answer to that form), deactivate and reactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from broadcast.auth import service as users
from broadcast.auth.models import Role, User
from broadcast.common import PlainText
from broadcast.console.pages.common import Line, Text, perform, refused_to, show_page
from broadcast.console.session import AdminDep, Viewer
from broadcast.deps import Id, SessionDep
from broadcast.errors import DomainError, NotFound
from broadcast.i18n import _

router = APIRouter()
HERE = "/console/users"


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, viewer: AdminDep):
    return _page(request, session, viewer)


@router.post("/users", response_class=HTMLResponse)
def add(
    request: Request,
    session: SessionDep,
    viewer: AdminDep,
    name: Annotated[PlainText, Form(max_length=80)],
    role: Annotated[Role, Form()],
    display_name: Line = "",
    password: Text = "",
):
    try:
        with session.begin_nested():
            user, token = users.add_user(
                session,
                name=name,
                role=role,
                password=password or None,
                display_name=display_name,
                by=viewer.user,
            )
    except DomainError as exc:
        return refused_to(HERE, exc)
    return _page(request, session, viewer, shown_token=(user, token))


@router.post("/users/{user_id}/role")
def change_role(
    request: Request,
    user_id: Id,
    session: SessionDep,
    viewer: AdminDep,
    role: Annotated[Role, Form()],
):
    def work() -> str:
        users.set_role(session, _user(session, user_id), role, by=viewer.user)
        return f"{HERE}#user-{user_id}"

    return perform(request, session, work, fallback=HERE, done=_("The role was changed."))


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request, user_id: Id, session: SessionDep, viewer: AdminDep, password: Text
):
    def work() -> str:
        users.set_password(session, _user(session, user_id), password, by=viewer.user)
        return f"{HERE}#user-{user_id}"

    return perform(request, session, work, fallback=HERE, done=_("The password was changed."))


@router.post("/users/{user_id}/active")
def set_active(
    request: Request,
    user_id: Id,
    session: SessionDep,
    viewer: AdminDep,
    active: Annotated[bool, Form()],
):
    def work() -> str:
        users.set_active(session, _user(session, user_id), active, by=viewer.user)
        return f"{HERE}#user-{user_id}"

    done = _("The user can sign in again.") if active else _("The user was signed out everywhere.")
    return perform(request, session, work, fallback=HERE, done=done)


@router.post("/users/{user_id}/token", response_class=HTMLResponse)
def replace_token(request: Request, user_id: Id, session: SessionDep, viewer: AdminDep):
    try:
        user = _user(session, user_id)
        token = users.revoke_token(session, user, by=viewer.user)
    except DomainError as exc:
        return refused_to(HERE, exc)
    return _page(request, session, viewer, shown_token=(user, token))


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    shown_token: tuple[User, str] | None = None,
) -> HTMLResponse:
    return show_page(
        request,
        "console/users.html",
        viewer,
        users=users.all_users(session),
        signed_in=users.last_sign_ins(session),
        roles=list(Role),
        shown_token=shown_token,
    )


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_("user %(name)s not found"), name=user_id)
    return user
