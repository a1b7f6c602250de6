"""``broadcast``: serve, worker, demo, publish-static, user add|list|set-password|deactivate|
activate|role|revoke-tokens, db upgrade, push keys."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
import uvicorn

from broadcast import logs
from broadcast.auth import service as users
from broadcast.auth.models import Role
from broadcast.errors import DomainError
from broadcast.settings import Settings, config_file

if TYPE_CHECKING:
    from sqlmodel import Session

    from broadcast.auth.models import User
    from broadcast.db import Database

T = TypeVar("T")

WORKER_HEALTHCHECK_SECONDS = 30
app = typer.Typer(help="Crisis-communication broadcast service.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the console and the API.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(db_app, name="db")
push_app = typer.Typer(help="Web push.", no_args_is_help=True)
app.add_typer(push_app, name="push")


def _settings() -> Settings:
    settings = Settings()
    logs.configure(settings.log_level, settings.log_json)
    return settings


def _fail(message: str, code: int = 1) -> NoReturn:
    """One clear line on standard error and a non-zero exit, never a traceback."""
    typer.echo(f"broadcast: {message}", err=True)
    raise typer.Exit(code)


def _at_address(settings: Settings, host: str, port: int) -> Settings:
    """Without ``BROADCAST_PUBLIC_URL`` (or ``public_url`` in the TOML file) the links in pages
    and messages point at the address this process serves on."""
    if "public_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:  # an IPv6 address
        shown = f"[{shown}]"
    return settings.model_copy(update={"public_url": f"http://{shown}:{port}"})


def _require_areas(settings: Settings) -> None:
    """Without its areas nobody can subscribe by area or postcode: refuse to start."""
    path = Path(settings.areas_file)
    if not path.is_file():
        _fail(
            f"the areas file {path} does not exist (relative to {Path.cwd()}); set "
            f"BROADCAST_AREAS_FILE (or areas_file in {config_file()}) to your areas.toml, "
            "or start from the project directory",
            2,
        )


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    dispatch: Annotated[bool, typer.Option(help="Also run the dispatcher and scheduler")] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="Web processes on this host (PostgreSQL only)")
    ] = 1,
):
    """Run the API, the public site and (unless --no-dispatch) the dispatcher and scheduler."""
    from broadcast.app import SERVE_DISPATCH_ENV, create_app

    settings = _at_address(_settings(), host, port)
    if workers > 1 and settings.is_sqlite:
        typer.echo("SQLite runs one process; use PostgreSQL for --workers", err=True)
        raise typer.Exit(2)
    _require_areas(settings)
    if workers > 1 and "public_url" not in settings.model_fields_set:
        os.environ["BROADCAST_PUBLIC_URL"] = settings.public_url  # each worker reads it
    typer.echo(f"serving on http://{host}:{port}; public address {settings.public_url}", err=True)
    # No access log: client addresses are personal data. Forwarded headers only from the
    # configured proxies: anybody else could name any address and escape the login throttle.
    proxies = settings.forwarded_allow_ips
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    if workers == 1:
        uvicorn.run(create_app(settings, dispatch=dispatch, schedule=dispatch), **options)
        return
    os.environ[SERVE_DISPATCH_ENV] = "1" if dispatch else "0"  # read by each worker's factory
    uvicorn.run(
        "broadcast.app:app_from_settings",
        factory=True,
        workers=workers,
        # A worker answers the supervisor's pings only once it has imported the application
        # (seconds on a busy host); after uvicorn's 5 s it would be killed and restarted.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **options,
    )


@app.command()
def worker():
    """Run a dispatcher and a scheduler candidate without the web server (scale-out)."""
    from broadcast.worker import run_worker

    settings = _settings()
    _require_areas(settings)
    asyncio.run(run_worker(settings, stop_signals=(signal.SIGINT, signal.SIGTERM)))


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="The --host you will serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The --port you will serve on")] = 8000,
):
    """Seed a realistic Maas-flood scenario into the database (then run `broadcast serve`)."""
    from broadcast.demo import seed

    settings = _at_address(_settings(), host, port)
    _require_areas(settings)
    serve_command = "broadcast serve" + (f" --host {host}" if host != "127.0.0.1" else "")
    serve_command += f" --port {port}" if port != 8000 else ""
    typer.echo(seed(settings, serve_command=serve_command))


@app.command("publish-static")
def publish_static(
    directory: Annotated[Path, typer.Argument(help="Becomes a link to the newest copy")],
):
    """Write the public site (pages in Dutch and English, Atom, CAP, short links, assets and
    media) as static files for nginx or a CDN; replaces the previous copy atomically."""
    from broadcast.app import create_app
    from broadcast.web.static_export import ExportFailed, publish

    async def publish_once(settings: Settings):
        # The application without background duties (and without exporting on its own).
        quiet = settings.model_copy(update={"static_dir": ""})
        application = create_app(quiet, dispatch=False, schedule=False)
        async with application.router.lifespan_context(application):
            return await publish(application, directory)

    try:
        result = asyncio.run(publish_once(_settings()))
    except ExportFailed as problem:
        typer.echo(f"publish-static: {problem}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(result.files)} files written; {directory} -> {result.tree}")


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[Role, typer.Option(help="officer, volunteer or admin")],
    password: Annotated[str | None, typer.Option(help="For the web console")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in credits")] = "",
):
    """Create a user; prints the API token (shown once) on the last line."""
    from broadcast.auth import service
    from broadcast.db import Database
    from broadcast.migrate import upgrade

    settings = _settings()
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("Password for the web console (empty: none): ") or None
    db = Database(settings.database_url)
    upgrade(db.engine)
    try:
        with db.session_scope() as session:
            user, token = service.add_user(
                session, name=name, role=role, password=password, display_name=display_name
            )
    except DomainError as problem:
        _fail(problem.detail)
    finally:
        db.dispose()
    if password is None:
        typer.echo(
            f"note: {name!r} has no console password (no terminal to ask on; pass --password "
            "to sign in to the console); the API token works",
            err=True,
        )
    typer.echo(f"created {user.role} {user.name!r} (id {user.id}); API token:", err=False)
    typer.echo(token)


@user_app.command("list")
def user_list():
    """Every user: name, role, active, created and last console sign-in (no secrets)."""
    from broadcast.i18n import local_time

    with _database() as db, db.session_scope() as session:
        everyone, signed_in = users.all_users(session), users.last_sign_ins(session)
        rows = [
            (
                u.name,
                u.role.value,
                "active" if u.active else "inactive",
                local_time(u.created_at, "%Y-%m-%d %H:%M"),
                local_time(signed_in.get(u.id or 0), "%Y-%m-%d %H:%M") or "-",
            )
            for u in everyone
        ]
    header = ("NAME", "ROLE", "STATE", "CREATED", "LAST SIGN-IN")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@user_app.command("set-password")
def user_set_password(
    name: str,
    password: Annotated[str | None, typer.Option(help="Without a terminal to ask on")] = None,
):
    """Set a user's console password (asked for on a terminal)."""
    if password is None:
        if not sys.stdin.isatty():
            _fail("no password: pass --password (there is no terminal to ask on)")
        password = getpass.getpass(f"New console password for {name!r}: ")
    _change_user(name, lambda s, user: users.set_password(s, user, password, by="cli"))
    typer.echo(f"password of {name!r} changed")


@user_app.command("deactivate")
def user_deactivate(name: str):
    """End every session and token of a user at once; they can no longer sign in."""
    _change_user(name, lambda s, user: users.set_active(s, user, False, by="cli"))
    typer.echo(f"{name!r} deactivated: signed out everywhere, API token gone")


@user_app.command("activate")
def user_activate(name: str):
    """Let a deactivated user sign in again with their password (a token: revoke-tokens)."""
    _change_user(name, lambda s, user: users.set_active(s, user, True, by="cli"))
    typer.echo(f"{name!r} can sign in again; `broadcast user revoke-tokens` gives a new API token")


@user_app.command("role")
def user_role(
    name: str,
    role: Annotated[Role, typer.Argument(help="officer, volunteer or admin")],
):
    """Change a user's role."""
    _change_user(name, lambda s, user: users.set_role(s, user, role, by="cli"))
    typer.echo(f"{name!r} is now {role.value}")


@user_app.command("revoke-tokens")
def user_revoke_tokens(name: str):
    """Replace a user's API token; prints the new one (shown once) on the last line."""
    token = _change_user(name, lambda s, user: users.revoke_token(s, user, by="cli"))
    typer.echo(f"the old API token of {name!r} no longer works; the new one:")
    typer.echo(token)


def _change_user(name: str, change: Callable[[Session, User], T]) -> T:
    """``change(session, user)`` in one transaction; a refusal is one line and exit code 1."""
    try:
        with _database() as db, db.session_scope() as session:
            return change(session, users.find_user(session, name))
    except DomainError as problem:
        _fail(problem.detail)


@contextmanager
def _database() -> Iterator[Database]:
    """The configured database, migrated, disposed of afterwards."""
    from broadcast.db import Database
    from broadcast.migrate import upgrade

    db = Database(_settings().database_url)
    try:
        upgrade(db.engine)
        yield db
    finally:
        db.dispose()


@db_app.command("upgrade")
def db_upgrade():
    """Apply the Alembic migrations."""
    from broadcast.db import Database
    from broadcast.migrate import upgrade

    settings = _settings()
    db = Database(settings.database_url)
    upgrade(db.engine)
    typer.echo("database is up to date")


@db_app.command("revision", hidden=True)
def db_revision(message: str):
    """(Developers) autogenerate a migration from the models."""
    from broadcast.db import Database
    from broadcast.migrate import revision

    db = Database(_settings().database_url)
    revision(db.engine, message)


@push_app.command("keys")
def push_keys() -> None:
    """Print a new VAPID key pair for BROADCAST_VAPID_PRIVATE_KEY (and its public key)."""
    from channels.registry import discover

    adapter: Any = discover()[0].get("push")  # the adapter that offers it, by its name
    if adapter is None or not hasattr(adapter, "new_keys"):
        _fail("the push channel adapter is not installed")
    for line in adapter.new_keys():
        typer.echo(line)


def main() -> None:
    """The ``broadcast`` command: what goes wrong in a known way is one line and exit code 1."""
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except DomainError as problem:
        typer.echo(f"broadcast: {problem.detail}", err=True)
        sys.exit(1)
    except OperationalError as problem:  # the database is unreachable or not writable
        typer.echo(f"broadcast: the database is not available: {problem.orig}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
