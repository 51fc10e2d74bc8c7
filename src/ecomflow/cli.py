"""The ecomflow command: start a project, run everything, manage users, start processes, check flows.yaml."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from ecomflow.catalog_commands import catalog_app
from ecomflow.definition_commands import instances_app
from ecomflow.engine.config import get_settings

app = typer.Typer(
    help="ecomflow — e-commerce processes as Prefect flows with a human task inbox.", no_args_is_help=True
)
users_app = typer.Typer(help="Manage users and their tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
report_app = typer.Typer(help="Print reports from the task history.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(instances_app, name="instances")
app.add_typer(catalog_app, name="catalog")


def _use_our_prefect() -> None:
    """Point this process's Prefect client at our server before Prefect is imported."""
    from ecomflow.services import prefect_env

    for key, value in prefect_env(get_settings()).items():
        os.environ.setdefault(key, value)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="where to write flows.yaml; created if missing")] = Path("."),
) -> None:
    """Write the shipped flows.yaml and notifications.yaml into a directory to start a project; never overwrite."""
    from ecomflow.engine.config import PACKAGED_DEFINITIONS, PACKAGED_NOTIFICATIONS

    starters = {
        directory / "flows.yaml": PACKAGED_DEFINITIONS,
        directory / "notifications.yaml": PACKAGED_NOTIFICATIONS,
    }
    if directory.exists() and not directory.is_dir():
        typer.echo(f"error: {directory} is not a directory", err=True)
        raise typer.Exit(2)
    existing = [target for target in starters if target.exists()]
    if existing:
        typer.echo(f"error: {existing[0]} already exists; ecomflow init never overwrites it", err=True)
        raise typer.Exit(2)
    for target, shipped in starters.items():
        _write_new(target, shipped.read_bytes())
    typer.echo(f"wrote {directory.resolve() / 'flows.yaml'}: the shipped processes, to edit for your team")
    typer.echo(f"wrote {directory.resolve() / 'notifications.yaml'}: which events reach which channels")
    typer.echo("next:")
    for command, why in _next_commands(directory):
        typer.echo(f"  {command:<18} # {why}")


def _write_new(target: Path, content: bytes) -> None:
    """Create target with content, or exit 2 naming it; a file written meanwhile is never overwritten."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x" creates the file or fails.
        with target.open("xb") as starter:
            starter.write(content)
    except FileExistsError:
        typer.echo(f"error: {target} already exists; ecomflow init never overwrites it", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write {target}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


def _next_commands(directory: Path) -> list[tuple[str, str]]:
    """Return the commands that take a new project from flows.yaml to running, each with its reason."""
    settings = get_settings()
    steps = [
        ("ecomflow check", "validate flows.yaml after each edit"),
        ("ecomflow migrate", "create the database"),
        (
            "ecomflow up",
            f"run the Prefect server (UI :{settings.prefect_port}), the API (:{settings.api_port}) and the worker",
        ),
    ]
    if directory.resolve() != Path.cwd().resolve():
        # Settings read ./flows.yaml and keep the data in ./.ecomflow of the working directory.
        steps.insert(0, (f"cd {shlex.quote(str(directory))}", "ecomflow reads ./flows.yaml where it runs"))
    return steps


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, and store each changed process definition as a new version."""
    from ecomflow.definition_commands import store_definition_versions
    from ecomflow.engine.db.migrate import upgrade_to_head

    upgrade_to_head()
    typer.echo(f"database at head: {get_settings().resolved_database_url}")
    store_definition_versions()


@app.command()
def check(
    file: Annotated[Path | None, typer.Option(help="flows.yaml to check")] = None,
    notifications: Annotated[Path | None, typer.Option(help="notifications.yaml to check")] = None,
) -> None:
    """Validate flows.yaml and notifications.yaml, naming every error; then say what running instances would meet."""
    from ecomflow.definition_commands import check_flow_code, report_running_instances
    from ecomflow.engine.definitions.processes import load_definitions
    from ecomflow.engine.errors import DefinitionError
    from ecomflow.engine.events.routing_file import load_routing

    settings = get_settings()
    path = file or settings.definitions_path
    try:
        definitions = load_definitions(path)
    except DefinitionError as exc:
        _echo_problems(path, exc.problems)
        raise typer.Exit(1) from None
    mismatched = check_flow_code(definitions)
    if mismatched:
        _echo_problems(path, mismatched)
        raise typer.Exit(1)
    steps = sum(len(p.steps) for p in definitions.processes.values())
    typer.echo(f"{path}: ok — {len(definitions.roles)} roles, {len(definitions.processes)} processes, {steps} steps")
    routing_path = notifications or settings.notifications_path
    try:
        routing = load_routing(routing_path, definitions)
    except DefinitionError as exc:
        _echo_problems(routing_path, exc.problems)
        raise typer.Exit(1) from None
    configured = {channel.name: channel.type for channel in settings.channels}
    shown = ", ".join(f"{name} ({kind})" for name, kind in sorted(configured.items())) or "none"
    typer.echo(f"{routing_path}: ok — {len(routing.routes)} routes; channels configured: {shown}")
    for name in sorted(routing.channel_names - set(configured)):
        typer.echo(f"  note: routes name channel {name!r}, which is not configured: nothing is sent there")
    report_running_instances(definitions)


def _echo_problems(path: Path, problems: list[str]) -> None:
    typer.echo(f"{path}: {len(problems)} problem(s)", err=True)
    for problem in problems:
        typer.echo(f"  {problem}", err=True)


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="a role key from flows.yaml; repeat for several")],
) -> None:
    """Create a user and print their API token (shown only this once)."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.errors import EcomflowError
    from ecomflow.engine.people.users import add_user

    try:
        with session_scope() as session:
            _, token = add_user(session, name=name, roles=role, known_roles=get_definitions().roles)
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)


@users_app.command("revoke")
def users_revoke(name: str) -> None:
    """Revoke every API token and end every web session of a user: each is refused from the next request on."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.errors import EcomflowError
    from ecomflow.engine.people.users import revoke_access

    try:
        with session_scope() as session:
            revoked = revoke_access(session, name=name)
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {revoked.tokens} token(s) and {revoked.web_sessions} web session(s) of {name}")


@users_app.command("password")
def users_password(
    name: str,
    password: Annotated[
        str | None, typer.Option("--password", help="the new password; asked for (hidden, twice) when left out")
    ] = None,
) -> None:
    """Set the password a user signs in to the web pages with (/ui)."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.errors import EcomflowError
    from ecomflow.engine.people.users import set_password

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with session_scope() as session:
            set_password(session, name=name, password=password)
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"password set for {name}")


@users_app.command("contact")
def users_contact(
    name: str,
    mobile: Annotated[str | None, typer.Option(help="for @-mentions in DingTalk and WeCom; '' clears")] = None,
    email: Annotated[str | None, typer.Option(help="for email notifications; '' clears")] = None,
    dingtalk_id: Annotated[str | None, typer.Option("--dingtalk-id", help="DingTalk userid; '' clears")] = None,
    wecom_id: Annotated[str | None, typer.Option("--wecom-id", help="WeCom userid; '' clears")] = None,
    feishu_id: Annotated[str | None, typer.Option("--feishu-id", help="Feishu open_id; '' clears")] = None,
) -> None:
    """Set where notifications reach a user: mobile, email and IM ids (options left out stay as they are)."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.errors import EcomflowError
    from ecomflow.engine.people.contacts import CONTACT_FIELDS, contact_of, set_contact
    from ecomflow.engine.people.principals import SYSTEM

    given = {"mobile": mobile, "email": email, "dingtalk_id": dingtalk_id, "wecom_id": wecom_id, "feishu_id": feishu_id}
    try:
        with session_scope() as session:
            user = set_contact(
                session, name=name, principal=SYSTEM, changes={k: v for k, v in given.items() if v is not None}
            )
            contact = contact_of(user)
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    for field in CONTACT_FIELDS:
        typer.echo(f"{field}: {getattr(contact, field) or '-'}")


@report_app.command("daily")
def report_daily(
    day: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD in the team's time zone; default: today")
    ] = None,
) -> None:
    """Print the daily report (日报表) of a day as markdown, as the scheduled flow publishes it."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from ecomflow.engine.clock import utcnow
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.reports.daily_report import build_daily_report

    timezone = get_definitions().timezone
    try:
        # fromisoformat alone would also take 20260501 or 2026-W18-5.
        if day is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ValueError(day)
        report_day = date.fromisoformat(day) if day is not None else utcnow().astimezone(ZoneInfo(timezone)).date()
    except ValueError:
        typer.echo(f"error: --date must be a date as YYYY-MM-DD, not {day!r}", err=True)
        raise typer.Exit(2) from None
    with session_scope() as session:
        report = build_daily_report(session, day=report_day, timezone=timezone, now=utcnow())
    typer.echo(report.markdown(), nl=False)


@app.command()
def start(
    process: str,
    business_key: Annotated[str, typer.Option("--business-key", help="e.g. the order id")],
    as_user: Annotated[str, typer.Option("--as", help="the user who starts it: one of the process's starters")],
    param: Annotated[list[str] | None, typer.Option("--param", help="k=v; v is parsed as JSON when it can be")] = None,
) -> None:
    """Start a process instance from the command line, on behalf of a user (the same starters rule as the API)."""
    from ecomflow.engine.db.sessions import session_scope
    from ecomflow.engine.definitions.current import get_definitions
    from ecomflow.engine.errors import EcomflowError, ValidationFailed
    from ecomflow.engine.instances.lifecycle import start_instance
    from ecomflow.engine.people.users import find_user, principal_of

    params = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"error: --param {item!r} must be k=v", err=True)
            raise typer.Exit(2)
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    try:
        with session_scope() as session:
            user = find_user(session, as_user)
            if user is None or not user.active:
                typer.echo(f"error: --as: user {as_user} does not exist or is inactive", err=True)
                raise typer.Exit(2)
            instance = start_instance(
                session,
                definitions=get_definitions(),
                process_key=process,
                business_key=business_key,
                params=params,
                principal=principal_of(session, user),
            )
    except ValidationFailed as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem.field}: {problem.message}", err=True)
        raise typer.Exit(2) from None
    except EcomflowError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        json.dumps({"id": instance.id, "process": process, "business_key": business_key, "state": instance.state})
    )


@app.command()
def api() -> None:
    """Serve the HTTP API."""
    import uvicorn

    _use_our_prefect()
    settings = get_settings()
    uvicorn.run(
        "ecomflow.api.app:create_app", factory=True, host=settings.api_host, port=settings.api_port, log_level="warning"
    )


@app.command()
def worker() -> None:
    """Run flow runs in this process, and deliver the outbox and sweep due times."""
    _use_our_prefect()
    from ecomflow.worker_process import run_worker

    run_worker()


@app.command()
def demo(
    drive: Annotated[bool, typer.Option("--drive", help="play the staff over HTTP and complete every step")] = False,
    api_url: Annotated[str | None, typer.Option("--api", help="API base URL (default: the configured one)")] = None,
) -> None:
    """Create a user per role and sample SKUs, and start one instance of every process (needs `ecomflow up`)."""
    from ecomflow.demo import run_demo

    run_demo(drive_staff=drive, api=api_url)


@app.command()
def up() -> None:
    """Migrate, then run the Prefect server (unless PREFECT_API_URL is set), the API and the worker."""
    from ecomflow.supervisor import run_all

    sys.exit(run_all())


if __name__ == "__main__":
    app()
