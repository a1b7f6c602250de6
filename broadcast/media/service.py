"""Media of updates: who may add, see and remove them, and how channels receive them.

Services add and flush; the caller commits. Files are written before the row (and removed when
the row is not stored), and removed after the row's deletion has committed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.auth.models import Role, User
from broadcast.common import xml_safe
from broadcast.errors import Conflict, Forbidden, Invalid, NotFound
from broadcast.i18n import _
from broadcast.media import files
from broadcast.media.files import Received
from broadcast.media.models import MediaItem, MediaKind
from broadcast.settings import Settings
from broadcast.timeline import service as timeline
from broadcast.timeline.models import Update, UpdateState
from channels.base import Media

# Media can be added until the update goes out: published content never changes.
OPEN_STATES = (UpdateState.draft, UpdateState.pending_approval, UpdateState.scheduled)
MAX_ALT_CHARS = 1000  # Mastodon takes 1500; screen readers want far less


def get(session: Session, media_id: int) -> MediaItem:
    item = session.get(MediaItem, media_id)
    if item is None:
        raise NotFound(_("media %(id)s not found"), id=media_id)
    return item


def by_name(session: Session, name: str) -> MediaItem | None:
    return session.exec(select(MediaItem).where(MediaItem.name == name)).first()


def for_update(session: Session, update_id: int) -> list[MediaItem]:
    return list(
        session.exec(
            select(MediaItem).where(MediaItem.update_id == update_id).order_by(col(MediaItem.id))
        )
    )


def for_updates(session: Session, update_ids: Iterable[int]) -> dict[int, list[MediaItem]]:
    ids = set(update_ids)
    found: dict[int, list[MediaItem]] = {}
    if not ids:
        return found
    query = select(MediaItem).where(col(MediaItem.update_id).in_(ids)).order_by(col(MediaItem.id))
    for item in session.exec(query):
        found.setdefault(item.update_id, []).append(item)
    return found


def is_public(update: Update) -> bool:
    """Anyone may see the media of a public, published update. A retracted update's text stays
    readable (struck through); its photos do not: retractions are often about what they show."""
    return update.public and update.state == UpdateState.published


def may_view(update: Update, viewer: User | None) -> bool:
    if is_public(update):
        return True
    return viewer is not None and timeline.visible_to(update, viewer)


def check_upload(session: Session, update: Update, user: User, settings: Settings) -> None:
    """Raise unless ``user`` may add one more item to ``update`` now."""
    if user.role == Role.volunteer:
        if update.author_id != user.id:
            raise Forbidden(_("volunteers may add photos and videos only to their own proposals"))
        if update.state != UpdateState.pending_approval:
            raise Conflict(
                _("update %(id)s is %(state)s; media can no longer be added"),
                id=update.id,
                state=str(update.state),
            )
    elif update.state not in OPEN_STATES:
        raise Conflict(
            _(
                "update %(id)s is %(state)s; media can be added only before it is "
                "published (post it as a draft, add the media, then approve it)"
            ),
            id=update.id,
            state=str(update.state),
        )
    count = session.exec(
        select(func.count()).select_from(MediaItem).where(MediaItem.update_id == update.id)
    ).one()
    if count >= settings.media_max_items:
        raise Conflict(
            _("update %(id)s has %(count)s media items already; at most %(most)s per update"),
            id=update.id,
            count=count,
            most=settings.media_max_items,
        )


def update_for_upload(session: Session, update_id: int, *, lock: bool = False) -> Update:
    """The update, row-locked on PostgreSQL when ``lock`` (two uploads cannot both pass the
    count check; SQLite serialises writers already)."""
    update = session.get(Update, update_id, with_for_update=lock or None)
    if update is None:
        raise NotFound(_("update %(id)s not found"), id=update_id)
    return update


def alt_texts(fields: dict[str, str]) -> dict[str, str]:
    """``alt`` (Dutch, or the only language) and ``alt_en`` from the form."""
    alt = {
        "nl": fields.get("alt_nl") or fields.get("alt") or "",
        "en": fields.get("alt_en") or "",
    }
    alt = {lang: " ".join(xml_safe(text).split()) for lang, text in alt.items()}
    alt = {lang: text for lang, text in alt.items() if text}
    if not alt:
        raise Invalid(_("describe the photo or video in the field 'alt' (for screen readers)"))
    if too_long := [lang for lang, text in alt.items() if len(text) > MAX_ALT_CHARS]:
        raise Invalid(
            _("alt text too long in %(languages)s: at most %(most)s"),
            languages=", ".join(too_long),
            most=MAX_ALT_CHARS,
        )
    return alt


def store(received: Received, settings: Settings) -> tuple[Path, files.Cleaned]:
    """Clean the received file into its final place under a random name. Blocking (Pillow)."""
    directory = settings.media_dir
    directory.mkdir(parents=True, exist_ok=True)
    stem = secrets.token_urlsafe(24)
    detected = received.detected
    if detected.kind == MediaKind.image:
        staging = directory / f"incoming-{stem}.{detected.extension}"
        try:
            cleaned = files.clean_image(
                received.path,
                staging,
                detected,
                max_side=settings.media_max_image_side,
                max_pixels=settings.media_max_image_pixels,
                max_decoded_pixels=settings.media_max_decoded_pixels,
            )
            target = directory / f"{stem}.{cleaned.extension}"
            staging.replace(target)
        finally:
            staging.unlink(missing_ok=True)
        return target, cleaned
    cleaned = files.check_video(received.path, detected)
    target = directory / f"{stem}.{cleaned.extension}"
    received.path.replace(target)
    return target, cleaned


def attach(
    session: Session,
    update_id: int,
    *,
    user: User,
    path: Path,
    cleaned: files.Cleaned,
    alt: dict[str, str],
    settings: Settings,
) -> MediaItem:
    update = update_for_upload(session, update_id, lock=True)
    check_upload(session, update, user, settings)  # again: things may have changed meanwhile
    item = MediaItem(
        update_id=update_id,
        name=path.name,
        kind=cleaned.kind,
        content_type=cleaned.content_type,
        size=path.stat().st_size,
        width=cleaned.width,
        height=cleaned.height,
        alt=alt,
        uploader_id=user.id,
    )
    session.add(item)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        actor_id=user.id,
        action="media.add",
        subject=f"update:{update_id}",
        media=item.id,
        kind=item.kind.value,
        size=item.size,
    )
    return item


def remove(session: Session, item: MediaItem, *, user: User, settings: Settings) -> Path:
    """Delete the row; returns the file to remove once that has committed. Officers may remove
    any item at any time (personal data); a volunteer only from their own pending proposal."""
    update = session.get(Update, item.update_id)
    if user.role == Role.volunteer and not (
        update is not None
        and update.author_id == user.id
        and update.state == UpdateState.pending_approval
    ):
        raise Forbidden(_("volunteers may remove media only from their own pending proposals"))
    session.delete(item)
    session.flush()
    audit.record(
        session,
        actor=user.name,
        actor_id=user.id,
        action="media.remove",
        subject=f"update:{item.update_id}",
        media=item.id,
    )
    return settings.media_dir / item.name


def url_of(item: MediaItem, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/media/{item.name}"


def for_channels(items: Iterable[MediaItem], language: str, public_url: str) -> tuple[Media, ...]:
    """What adapters receive: absolute URLs, the alt text in the delivery's language."""
    return tuple(
        Media(url_of(item, public_url), item.content_type, item.alt_text(language))
        for item in items
    )
