"""The template library: the file's templates, with officers' stored changes laid over them."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from sqlmodel import Session, col, select

from broadcast import audit
from broadcast.auth.models import User
from broadcast.common import Severity, utcnow
from broadcast.errors import Invalid, NotFound
from broadcast.i18n import LANGUAGES, _
from broadcast.library import files
from broadcast.library.files import MessageTemplate
from broadcast.library.models import StoredTemplate

KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
MAX_TEMPLATE_CHARS = 2000
MAX_TITLE_CHARS = 80


def load(session: Session, path: Path) -> list[MessageTemplate]:
    """The file's templates in its order (changed ones as changed), then officers' new ones."""
    stored = {row.key: row for row in session.exec(select(StoredTemplate))}
    shipped = files.load(path)
    result = [_merged(t, stored.get(t.key)) for t in shipped]
    keys = {t.key for t in shipped}
    result += [_of(row) for key, row in sorted(stored.items()) if key not in keys]
    return [t for t in result if t is not None]


def find(session: Session, path: Path, key: str) -> MessageTemplate | None:
    return next((t for t in load(session, path) if t.key == key), None) if key else None


def save(
    session: Session,
    *,
    key: str,
    severity: str,
    title: dict[str, str],
    body: dict[str, str],
    officer: User,
) -> StoredTemplate:
    """Store an officer's version of the template ``key`` (a new one, or a change)."""
    key = key.strip().lower()
    if not KEY.fullmatch(key):
        raise Invalid(_("the key may hold only a-z, 0-9, - and _ (at most 40)"))
    if severity not in Severity.__members__:
        raise Invalid(_("%(field)s: %(value)s is not a severity"), field="severity", value=severity)
    body = {lang: text.strip() for lang, text in body.items() if lang in LANGUAGES and text.strip()}
    title = {lang: t.strip() for lang, t in title.items() if lang in LANGUAGES and t.strip()}
    if "nl" not in body:
        raise Invalid(_("the Dutch text is required"))
    if any(len(text) > MAX_TEMPLATE_CHARS for text in body.values()) or any(
        len(text) > MAX_TITLE_CHARS for text in title.values()
    ):
        raise Invalid(_("the template is too long"))
    row = _stored(session, key)
    row.severity, row.title, row.body, row.deleted = severity, title, body, False
    _touch(session, row, officer, "template.save", key=key)
    return row


def delete(session: Session, path: Path, key: str, *, officer: User) -> None:
    """No longer offer the template ``key`` (one of the file's, or an officer's)."""
    if find(session, path, key) is None:
        raise NotFound(_("template %(key)s not found"), key=repr(key))
    row = _stored(session, key)
    row.deleted = True
    _touch(session, row, officer, "template.delete", key=key)


def _stored(session: Session, key: str) -> StoredTemplate:
    row = session.exec(select(StoredTemplate).where(col(StoredTemplate.key) == key)).first()
    return row or StoredTemplate(key=key)


def _touch(session: Session, row: StoredTemplate, officer: User, action: str, **detail) -> None:
    row.updated_by, row.updated_at = officer.name, utcnow()
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=officer.name,
        actor_id=officer.id,
        action=action,
        subject=f"template:{row.id}",
        **detail,
    )


def _merged(shipped: MessageTemplate, row: StoredTemplate | None) -> MessageTemplate | None:
    return replace(shipped, id=None) if row is None else _of(row)


def _of(row: StoredTemplate) -> MessageTemplate | None:
    if row.deleted:
        return None
    return MessageTemplate(
        key=row.key, severity=row.severity, title=row.title, body=row.body, id=row.id
    )
