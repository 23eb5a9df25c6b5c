"""twostep bypass grant | revoke | list | show."""

from __future__ import annotations

import click

from .. import bypass as svc
from .. import timefmt
from ..bypass_kinds import PASS_USES
from ..durations import parse_duration
from .common import app, audit_sink, done, emit_json, emit_list, json_option, person, realm_options, show_pass


@click.group()
def bypass() -> None:
    """Switch the second factor off for one user for a limited time."""


@bypass.command()
@realm_options
@click.argument("user")
@click.option("--for", "duration", metavar="DURATION",
              help="How long: " + ", ".join(svc.PRESETS) + " or any 5m..policy maximum (e.g. 90m, 1d12h).")
@click.option("--until", "until", metavar="ISO-8601", help="End time, e.g. 2030-01-31T18:00:00Z.")
@click.option("--reason", default="", help="Why (required; kept in the record and the audit).")
@click.option("--reset-device", is_flag=True,
              help="Lost phone: remove the user's OTP devices and end sessions.")
@click.option("--end-sessions/--keep-sessions", "end_sessions", default=None,
              help="End the user's sessions now (default: only with --reset-device).")
@click.option("--extend", is_flag=True, help="Change the end of an active bypass (recorded as an extension).")
@click.option("--pass", "pass_use", type=click.Choice(PASS_USES), default=None,
              help="An access pass (still two-step: the password and the pass), used once or until the end; "
                   "shown once, here. Default kind: the realm's (setup --bypass-default), the pass (once) unless "
                   "set otherwise; the password in fallback mode (no provider).")
@click.option("--password", "password_only", is_flag=True,
              help="The password alone for the window (if the realm allows password-only bypasses); say it "
                   "when that is what you mean: without it the realm's default kind applies.")
@click.option("--break-glass", is_flag=True,
              help="Sole admin, lost phone: allow a self-bypass (operator credentials only; audited).")
@click.option("--actor", "actor", metavar="NAME", default=None,
              help="The person acting (required with the shared service account; or TWOSTEP_ACTOR).")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@json_option
def grant(user: str, duration: str | None, until: str | None, reason: str, reset_device: bool,
          end_sessions: bool | None, extend: bool, pass_use: str | None, password_only: bool, break_glass: bool,
          actor: str | None, dry_run: bool, as_json: bool) -> None:
    """Grant USER (username, e-mail or id) a bypass."""
    req = svc.GrantRequest(
        who=user, reason=reason, duration=parse_duration(duration) if duration is not None else None,
        until=svc.parse_until(until) if until is not None else None, reset_device=reset_device,
        end_sessions=end_sessions, extend=extend, break_glass=break_glass, pass_use=pass_use,
        password_only=password_only)
    if not reason.strip():
        svc.check_request(req)
    a = app()
    kc = a.client()
    result = svc.grant(kc, a.clock, audit_sink(a.settings), person(a, kc, actor), req, dry_run)
    done(result, as_json)
    if not as_json:
        show_pass(result)


@bypass.command()
@realm_options
@click.argument("user")
@click.option("--reason", default="", help="Why (kept in the audit).")
@click.option("--end-sessions/--keep-sessions", "end_sessions", default=True, show_default=True,
              help="End the sessions opened while the bypass was active.")
@click.option("--actor", "actor", metavar="NAME", default=None,
              help="The person acting (required with the shared service account; or TWOSTEP_ACTOR).")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@json_option
def revoke(user: str, reason: str, end_sessions: bool, actor: str | None, dry_run: bool, as_json: bool) -> None:
    """End USER's bypass now."""
    a = app()
    kc = a.client()
    result = svc.revoke(kc, a.clock, audit_sink(a.settings), person(a, kc, actor), user, reason, end_sessions, dry_run)
    done(result, as_json)


@bypass.command(name="list")
@realm_options
@json_option
def list_cmd(as_json: bool) -> None:
    """Active bypasses: user, until, time left, granted by, reason."""
    a = app()
    rows = svc.list_bypasses(a.client(), a.clock)
    if emit_list(rows, as_json, "bypasses", a.clock(), "no active bypasses"):
        return
    for r in rows:
        state = "" if r["state"] == "active" else f" [{r['state']}]"
        until = a.when(r["until"], "until") if r["until"] else "until ?"
        click.echo(f"{r['username']}  {until}  by {r['granted_by'] or '?'}"
                   f"  reason: {r['reason'] or '?'}{state}")


@bypass.command()
@realm_options
@click.argument("user")
@json_option
def show(user: str, as_json: bool) -> None:
    """USER's bypass record."""
    a = app()
    rec = svc.show(a.client(), a.clock, user)
    if as_json:
        emit_json(rec)
        return
    if rec["state"] == "none":
        click.echo(f"{rec['username']}: no bypass")
        return
    shown = dict(rec, until=a.when(rec["until"], "until"), granted_at=a.when(rec["granted_at"]),
                 seconds_left=timefmt.duration(rec["seconds_left"], a.lang) if rec["seconds_left"] else "-")
    for key in ("username", "state", "kind", "until", "seconds_left", "granted_by", "granted_at", "reason",
                "extended", "reset_device"):
        label = "time left" if key == "seconds_left" else key.replace("_", " ")
        click.echo(f"{label}: {shown[key]}")
