"""codes generate | status | revoke."""

from __future__ import annotations

import click

from .. import backup_codes
from ..users import resolve_user
from .common import (
    actor_of,
    app,
    audit_sink,
    check_writable_new_file,
    emit_json,
    json_option,
    realm_options,
    write_secret_file,
)


def codes_sheet(username: str, realm: str, codes: list[str]) -> str:
    lines = [
        f"Backup codes for {username} (realm {realm}): {len(codes)} codes, shown only this once.",
        "Keycloak asks for them IN ORDER: code #1 first, then #2, and so on; each works once.",
        "Type a code with or without the dashes, in capital letters.",
        "",
    ]
    width = len(str(len(codes)))
    lines += [f"  #{i:>{width}}  {code}" for i, code in enumerate(codes, 1)]
    lines += ["", "Any backup codes made before these no longer work."]
    return "\n".join(lines) + "\n"


@click.group()
def codes() -> None:
    """Backup codes (Keycloak's recovery-authn-codes credential)."""


@codes.command()
@realm_options
@click.argument("user")
@click.option("--count", type=int, default=backup_codes.DEFAULT_COUNT, show_default=True,
              help="How many codes (5 to 50).")
@click.option("--out", "out_file", metavar="FILE",
              help="Write the codes to a NEW file (mode 0600) instead of showing them.")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail).")
@click.option("--no-notify", is_flag=True, help="Do not e-mail the user (the audit records it).")
@click.option("--dry-run", is_flag=True, help="Check everything; make no codes and change nothing.")
@json_option
def generate(user: str, count: int, out_file: str | None, reason: str | None, no_notify: bool, dry_run: bool,
             as_json: bool) -> None:
    """Make a fresh set of backup codes for USER (replaces the old set)."""
    backup_codes.validate_count(count)
    if out_file:
        check_writable_new_file(out_file)
    a = app()
    kc = a.client()
    target = resolve_user(kc, user)
    creds = kc.user_credentials(target["id"])
    backup_codes.check_eligible(kc, target, creds)
    username = str(target.get("username"))
    if dry_run:
        replaced = bool(backup_codes.codes_credentials(creds))
        if as_json:
            emit_json({"dry_run": True, "user": username, "count": count, "replaces_existing": replaced})
        else:
            click.echo(f"would make {count} backup codes for {username}"
                       + (" (replacing the current set)" if replaced else ""))
        return
    settings = a.settings
    sink = audit_sink(settings)
    actor = actor_of(settings)
    now = a.clock()
    made, notified = backup_codes.generate(kc, target, count=count, actor=actor, now=now, sink=sink,
                                           notify=not no_notify, reason=reason)
    if out_file:
        write_secret_file(out_file, codes_sheet(username, kc.realm, made))
    if as_json:
        data: dict[str, object] = {"user": username, "count": count, "notified": notified,
                                   "order": "Keycloak asks for the codes in their numbered order"}
        if out_file:
            data["written_to"] = out_file
        else:
            data["codes"] = [{"number": i, "code": c} for i, c in enumerate(made, 1)]
        emit_json(data)
        return
    if out_file:
        click.echo(f"{count} backup codes for {username} written to {out_file} (mode 0600); "
                   "Keycloak asks for them in their numbered order")
    else:
        click.echo(codes_sheet(username, kc.realm, made), nl=False)
    click.echo(f"user notified: {notified}")


@codes.command()
@realm_options
@click.argument("user")
@json_option
def status(user: str, as_json: bool) -> None:
    """Whether USER has backup codes, how many are left, who made them and when."""
    kc = app().client()
    st = backup_codes.status(kc, resolve_user(kc, user))
    if as_json:
        emit_json(st.as_dict())
        return
    if not st.present:
        click.echo(f"{st.username}: no backup codes")
        return
    total = "?" if st.total is None else str(st.total)
    who = f"an admin ({st.admin})" if st.made_by == "admin" else "the user (in Keycloak)"
    click.echo(f"{st.username}: {st.remaining} of {total} backup codes left"
               + (f"; next asked for: #{st.next_number}" if st.next_number else ""))
    click.echo(f"  made by {who}" + (f", {app().when(st.made_at)}" if st.made_at else ""))
    if st.low:
        click.echo(f"  warning: only {st.remaining} left; make a new set soon (twostep codes generate)")


@codes.command()
@realm_options
@click.argument("user")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail and told to the user).")
@click.option("--no-notify", is_flag=True, help="Do not e-mail the user (the audit records it).")
def revoke(user: str, reason: str | None, no_notify: bool) -> None:
    """Delete USER's backup codes."""
    a = app()
    kc = a.client()
    target = resolve_user(kc, user)
    _n, notified = backup_codes.revoke(kc, target, actor=actor_of(a.settings), now=a.clock(),
                                       sink=audit_sink(a.settings), reason=reason, notify=not no_notify)
    click.echo(f"backup codes of {target.get('username')} revoked; user notified: {notified}")
