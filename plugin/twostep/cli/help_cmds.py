"""twostep help list | grant | dismiss: the queue of help requests ("I lost my phone")."""

from __future__ import annotations

from typing import Any

import click

from .. import help_requests as svc
from ..bypass_kinds import PASS_USES
from ..durations import format_duration, parse_duration
from .common import app, audit_sink, done, emit_list, json_option, person, realm_options, show_pass

_ACTOR_HELP = "The person acting (required with the shared service account; or TWOSTEP_ACTOR)."


@click.group(name="help")
def help_group() -> None:
    """Answer users who lost their second factor and asked an administrator from the login page."""


@help_group.command(name="list")
@realm_options
@json_option
def list_cmd(as_json: bool) -> None:
    """Open help requests, oldest first: user, when, message."""
    a = app()
    rows = svc.queue(a.client(), a.clock)
    if emit_list(rows, as_json, "requests", a.clock(), "no open help requests"):
        return
    for r in rows:
        if r["damaged"]:
            click.echo(f"{r['username']}  [damaged: {r['damaged']}]")
            continue
        told = f"admins e-mailed {a.when(r['notified_at'])}" if r["notified_at"] else "admins not e-mailed yet"
        # repr() keeps the user's words on one line, with any odd character visible.
        click.echo(f"{r['username']}  asked {a.when(r['asked_at'])}  {told}  message: {r['message']!r}")


@help_group.command()
@realm_options
@click.argument("user")
@click.option("--for", "duration", metavar="DURATION",
              help=f"How long the bypass lasts (default {format_duration(svc.DEFAULT_GRANT.total_seconds())}, "
                   "at most the policy maximum).")
@click.option("--pass", "pass_use", type=click.Choice(PASS_USES), default=None,
              help="Answer with an access pass (still two-step), used once or until the end; shown once, here. "
                   "Default kind: the realm's (setup --bypass-default), the pass (once) unless set otherwise.")
@click.option("--password", "password_only", is_flag=True,
              help="Answer with the password alone for the window (if the realm allows it).")
@click.option("--actor", "actor", metavar="NAME", default=None, help=_ACTOR_HELP)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@json_option
def grant(user: str, duration: str | None, pass_use: str | None, password_only: bool, actor: str | None,
          dry_run: bool, as_json: bool) -> None:
    """Answer USER's request: a bypass that also removes the lost device, then close the request."""
    length = parse_duration(duration) if duration is not None else None
    a = app()
    kc = a.client()
    result = svc.grant(kc, a.clock, audit_sink(a.settings), person(a, kc, actor), user, length, dry_run,
                       pass_use=pass_use, password_only=password_only)
    _answered(result, as_json, dry_run)
    if not as_json and not dry_run:
        show_pass(result)


@help_group.command()
@realm_options
@click.argument("user")
@click.option("--reason", default="", help="Why (required; told to the user and kept in the audit).")
@click.option("--actor", "actor", metavar="NAME", default=None, help=_ACTOR_HELP)
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@json_option
def dismiss(user: str, reason: str, actor: str | None, dry_run: bool, as_json: bool) -> None:
    """Close USER's request without changing the account."""
    if not reason.strip():
        svc.dismiss_reason(reason)
    a = app()
    kc = a.client()
    result = svc.dismiss(kc, a.clock, audit_sink(a.settings), person(a, kc, actor), user, reason, dry_run)
    _answered(result, as_json, dry_run)


def _answered(result: dict[str, Any], as_json: bool, dry_run: bool) -> None:
    """What an answer changed, then whether the user was told (an answer tells them by e-mail)."""
    done(result, as_json)
    if not as_json and not dry_run:
        click.echo(f"user notified: {result['notified']}")
