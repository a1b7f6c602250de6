"""Upload, list and remove media of updates (``/api/v1``), and serve the files (``/media``).

Uploads and file responses are async and hold no database session while bytes travel: the
caller is looked up in a short transaction of its own, the body is streamed to disk, and the row
is written in a second short transaction (on SQLite a session held across an upload would hold
the write lock for its whole duration).
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from broadcast.auth import sessions as console_sessions
from broadcast.auth.models import User
from broadcast.auth.service import user_for_token
from broadcast.deps import AUTH, Id, Member, SessionDep, SettingsDep, errors
from broadcast.errors import NotFound, Unauthorized
from broadcast.media import service
from broadcast.media.models import MediaItem, MediaKind
from broadcast.media.upload import receive
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update

router = APIRouter(prefix="/api/v1", tags=["media"])
files_router = APIRouter(tags=["media"])
_bearer = HTTPBearer(auto_error=False, description="API token from `broadcast user add`")
NAME = re.compile(r"^[A-Za-z0-9_-]{16,48}\.(jpg|png|mp4|webm)$")
PUBLIC_CACHE = "public, max-age=31536000, immutable"  # names are random; content never changes
PRIVATE_CACHE = "private, no-store"  # not public yet: whether it may be seen can still change


class MediaOut(BaseModel):
    id: int
    update_id: int
    kind: MediaKind
    content_type: str
    size: int
    width: int | None
    height: int | None
    alt: dict[str, str]
    url: str
    created_at: datetime


def media_out(item: MediaItem, public_url: str) -> MediaOut:
    return MediaOut(
        **item.model_dump(exclude={"name", "uploader_id"}), url=service.url_of(item, public_url)
    )


def _in_transaction(request: Request, work):
    return request.app.state.db.run(work)


async def optional_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """The caller, looked up in a transaction that ends before the request body is read."""
    if credentials is None:
        return None
    user = await _in_transaction(request, lambda s: user_for_token(s, credentials.credentials))
    if user is None:
        raise Unauthorized("invalid or revoked token")
    return user


async def caller(user: Annotated[User | None, Depends(optional_caller)]) -> User:
    if user is None:
        raise Unauthorized("a bearer token is required")
    return user  # every role is a member: officer, admin, volunteer


async def file_viewer(
    request: Request, user: Annotated[User | None, Depends(optional_caller)]
) -> User | None:
    """For reading files only: the bearer token, else the console's session cookie (so the
    console can show a proposal's photos in an ``<img>``). Never for uploads: a cookie alone
    is no proof against cross-site requests."""
    if user is not None or not (cookie := request.cookies.get(console_sessions.COOKIE)):
        return user

    def lookup(session):
        found = console_sessions.lookup(session, cookie)
        return found[0] if found else None

    return await _in_transaction(request, lookup)


Caller = Annotated[User, Depends(caller)]
FileViewer = Annotated[User | None, Depends(file_viewer)]

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "alt"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "JPEG, PNG or WebP photo, or MP4 or WebM video",
                        },
                        "alt": {"type": "string", "description": "Description in Dutch"},
                        "alt_en": {"type": "string", "description": "Description in English"},
                    },
                }
            }
        },
    }
}


@router.post(
    "/updates/{update_id}/media",
    status_code=201,
    response_model=MediaOut,
    summary="Add a photo or short video to an update that is not published yet",
    description="By an officer (draft, scheduled, pending approval) or by the volunteer who "
    "proposed the update (while it waits for approval). The type is read from the content; "
    "images are re-encoded without metadata (location, camera). 413 over the size limit, "
    "415 for another type, 409 when the update is published or has the maximum of items.",
    openapi_extra=_UPLOAD_FORM,
    responses=errors(*AUTH, 403, 404, 409, 413, 415, 422),
)
async def upload(update_id: Id, request: Request, user: Caller) -> MediaOut:
    item = await accept_upload(request, update_id, user)
    return media_out(item, request.app.state.settings.public_url)


async def accept_upload(request: Request, update_id: int, user: User) -> MediaItem:
    """Check, stream to disk, clean and attach the request's one file. Also the console's."""
    settings = request.app.state.settings

    def precheck(session):
        service.check_upload(session, service.update_for_upload(session, update_id), user, settings)

    await _in_transaction(request, precheck)  # 404, 403, 409 before a byte of the body is read

    def limit_for(detected) -> int:
        if detected.kind == MediaKind.image:
            return settings.media_max_image_bytes
        return settings.media_max_video_bytes

    received = await receive(
        request,
        settings.media_dir,
        limit_for=limit_for,
        largest=max(settings.media_max_image_bytes, settings.media_max_video_bytes),
    )
    try:
        alt = service.alt_texts(received.fields)
        path, cleaned = await asyncio.to_thread(service.store, received, settings)
    finally:
        received.path.unlink(missing_ok=True)
    try:
        return await _in_transaction(
            request,
            lambda s: service.attach(
                s, update_id, user=user, path=path, cleaned=cleaned, alt=alt, settings=settings
            ),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@router.get(
    "/updates/{update_id}/media",
    response_model=list[MediaOut],
    summary="The photos and videos of an update",
    responses=errors(*AUTH, 404, 422),
)
def list_media(update_id: Id, session: SessionDep, user: Member, settings: SettingsDep):
    update = timeline.get(session, update_id)
    if not service.may_view(update, user):
        raise NotFound(f"update {update_id} not found")
    return [media_out(item, settings.public_url) for item in service.for_update(session, update_id)]


@router.delete(
    "/media/{media_id}",
    status_code=204,
    summary="Remove a photo or video, file included",
    responses=errors(*AUTH, 403, 404, 422),
    description="Officers, at any time (also from published updates: personal data); a "
    "volunteer only from their own proposal while it waits for approval. Audited.",
)
def delete_media(media_id: Id, session: SessionDep, user: Member, settings: SettingsDep) -> None:
    path = service.remove(session, service.get(session, media_id), user=user, settings=settings)
    session.commit()  # the row is gone for good before the file is
    path.unlink(missing_ok=True)


FILE_TYPES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}, "video/webm": {}}}
}


@files_router.get(
    "/media/{name}",
    summary="A media file",
    description="Media of published public updates for everyone (cached for a year); of other "
    "updates only for members who may see the update (not cached).",
    response_class=FileResponse,
    openapi_extra={"security": [{"HTTPBearer": []}, {}]},  # the token is optional here
    responses=FILE_TYPES | errors(401, 404, 422),
)
async def media_file(name: str, request: Request, viewer: FileViewer):
    if not NAME.match(name):
        raise NotFound("no such file")
    settings = request.app.state.settings

    def work(session):
        item = service.by_name(session, name)
        update = session.get(Update, item.update_id) if item else None
        if item is None or update is None or not service.may_view(update, viewer):
            return None
        return item.content_type, service.is_public(update)

    found = await _in_transaction(request, work)
    path = settings.media_dir / name
    if found is None or not path.is_file():
        raise NotFound("no such file")
    content_type, public = found
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": PUBLIC_CACHE if public else PRIVATE_CACHE,
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "cross-origin" if public else "same-origin",
    }
    if not public:
        headers["Vary"] = "Authorization, Cookie"
    return FileResponse(path, media_type=content_type, headers=headers)
