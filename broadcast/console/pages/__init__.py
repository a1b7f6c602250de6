"""The console's pages. Every form posts, acts through the domain services, and redirects back
(post/redirect/get) with a short message; nothing here decides what the domain allows."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from broadcast.console.pages import duty, inbox, incidents, library, signin, updates, users
from broadcast.console.session import LoginRequired
from broadcast.web.rendering import render

router = APIRouter(include_in_schema=False)
for pages in (signin, incidents, updates, inbox, duty, users, library):
    router.include_router(pages.router, prefix="/console")


def install(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def login_first(request: Request, exc: LoginRequired):
        return RedirectResponse(f"/console/login?next={exc.next_url}", status_code=303)


def error_page(
    request: Request, status_code: int, message: str, values: dict | None = None
) -> HTMLResponse:
    """``message`` is translated, then filled in with ``values`` (a domain error's template)."""
    return render(
        request,
        "console/error.html",
        status_code=status_code,
        viewer=None,
        message=message,
        values=values or {},
    )
