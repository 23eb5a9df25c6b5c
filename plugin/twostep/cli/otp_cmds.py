"""otp reset | restore | list."""

from __future__ import annotations

import click

from ..devices import list_devices, reset_otp, restore_otp
from ..users import resolve_user
from .common import actor_of, app, audit_sink, emit_json, json_option, realm_options


@click.group()
def otp() -> None:
    """Authenticator (OTP) devices."""


@otp.command()
@realm_options
@click.argument("user")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail and told to the user).")
@click.option("--no-notify", is_flag=True, help="Do not e-mail the user (the audit records it).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@json_option
def reset(user: str, reason: str | None, no_notify: bool, dry_run: bool, as_json: bool) -> None:
    """Lost phone: remove USER's devices, ask for a new one at next login, end all sessions."""
    a = app()
    kc = a.client()
    target = resolve_user(kc, user)
    res = reset_otp(kc, target, actor=actor_of(a.settings), now=a.clock(), sink=audit_sink(a.settings),
                    reason=reason, dry_run=dry_run, notify=not no_notify)
    name = target.get("username")
    if as_json:
        emit_json({"dry_run": dry_run, "user": name, "devices_removed": [d.as_dict() for d in res.removed],
                   "devices_disabled": res.disabled, "configure_totp_required": True,
                   "sessions_ended": res.sessions_ended, "notified": res.notified})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{name}: {verb} {len(res.removed)} device(s)"
               + "".join(f"\n  - {d.label} (created {d.created})" for d in res.removed))
    click.echo(("would end" if dry_run else "ended") + f" {res.sessions_ended} session(s); "
               "a new device is asked for at next login")
    if res.disabled:
        click.echo("the devices are disabled, not deleted: restorable for 30 days or until a new device is "
                   f"enrolled (twostep otp restore {name})")
    if not dry_run:
        click.echo(f"user notified: {res.notified}")


@otp.command()
@realm_options
@click.argument("user")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail).")
@json_option
def restore(user: str, reason: str | None, as_json: bool) -> None:
    """Found phone: bring back USER's devices a reset or a help answer disabled (provider mode)."""
    a = app()
    kc = a.client()
    target = resolve_user(kc, user)
    res = restore_otp(kc, target, actor=actor_of(a.settings), now=a.clock(), sink=audit_sink(a.settings),
                      reason=reason)
    name = target.get("username")
    if as_json:
        emit_json({"user": name, "devices_restored": res.restored, "devices_purged": res.purged})
        return
    click.echo(f"{name}: restored {res.restored} device(s); its codes work again and no new device is asked")


@otp.command(name="list")
@realm_options
@click.argument("user")
@json_option
def list_cmd(user: str, as_json: bool) -> None:
    """USER's devices: label and creation time (never the secret)."""
    kc = app().client()
    target = resolve_user(kc, user)
    devices = list_devices(kc, target["id"])
    if as_json:
        emit_json({"user": target.get("username"), "devices": [d.as_dict() for d in devices]})
        return
    if not devices:
        click.echo(f"{target.get('username')}: no devices")
        return
    click.echo(f"{target.get('username')}: {len(devices)} device(s)")
    for d in devices:
        click.echo(f"  - {d.label}  created {app().when(d.created)}  id {d.id}")
