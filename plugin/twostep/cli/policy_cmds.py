"""setup, teardown, status, doctor."""

from __future__ import annotations

import click

from ..bypass_kinds import BYPASS_KINDS, parse_bypass_kinds
from ..doctor import doctor as run_doctor
from ..durations import parse_duration
from ..errors import InvalidInput
from ..flows import DEFAULT_HELP_RATE
from ..help_notify import check_help_admins
from ..policy import (
    BACKUP_CODES_CHOICES,
    HARD_BYPASS_MAX_S,
    HELP_EXPIRY_MAX_DAYS,
    HELP_RATE_MAX,
    Enforcement,
    parse_help_admins,
)
from ..realm_settings import BruteForce, OtpPolicy
from ..realm_setup import (
    DECIDE_CHOICES,
    HELP_CHOICES,
    KERBEROS_CHOICES,
    Desired,
    apply,
    plan,
    plan_teardown,
    read_actual,
)
from ..realm_status import Report, realm_status
from ..web_oidc_client import WEB_CLIENT_ID, normalize_url
from .common import app, check_writable_new_file, emit_json, json_option, realm_options, write_secret_file


def _print_plan(actions: list[str], dry_run: bool, as_json: bool) -> None:
    if as_json:
        emit_json({"dry_run": dry_run, "changes": actions})
        return
    if not actions:
        click.echo("no changes: the realm already matches the policy")
        return
    click.echo(("would apply" if dry_run else "applied") + f" {len(actions)} change(s):")
    for a in actions:
        click.echo(f"  - {a}")


@click.command()
@realm_options
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--enforce", "enforce", multiple=True, metavar="all|none|group:NAME",
              help="Who must use a second factor (repeat for several groups). Default: all.")
@click.option("--grace-days", type=click.IntRange(0, 365), default=0, show_default=True,
              help="Days a user in scope may log in without a device before setup is required.")
@click.option("--bypass-max", default="7d", show_default=True, help="Longest bypass an admin may grant (max 30d).")
@click.option("--otp-algorithm", default="HmacSHA1", show_default=True)
@click.option("--otp-digits", type=int, default=6, show_default=True)
@click.option("--otp-period", type=int, default=30, show_default=True)
@click.option("--otp-look-around", type=int, default=1, show_default=True)
@click.option("--theme", metavar="NAME", help="Login theme to select for the realm (e.g. twostep).")
@click.option("--no-service-client", is_flag=True, help="Do not create the twostep-cli service account client.")
@click.option("--secret-file", metavar="FILE",
              help="Write a new client secret to FILE (mode 0600) instead of printing it.")
@click.option("--web-url", metavar="URL",
              help="Also create the web app's sign-in client twostep-web for the app served at URL.")
@click.option("--web-secret-file", metavar="FILE",
              help="Write the new twostep-web client secret to FILE (mode 0600) instead of printing it.")
@click.option("--decide-with", type=click.Choice(DECIDE_CHOICES), default="auto", show_default=True,
              help="Who decides at sign-in: the twostep provider in Keycloak (bypasses end on time), or "
                   "sync (a marker attribute that `twostep sync` clears); auto = provider when loaded.")
@click.option("--backup-codes", type=click.Choice(BACKUP_CODES_CHOICES), default="required", show_default=True,
              help="Backup codes after the first second factor: required, offered, or off.")
@click.option("--help-requests", "help_requests", type=click.Choice(HELP_CHOICES), default=None,
              help="Offer \"I lost my phone: ask an administrator\" after the password step (needs the "
                   "provider). Default: on when the provider decides.")
@click.option("--help-rate", type=click.IntRange(0, HELP_RATE_MAX), default=DEFAULT_HELP_RATE, show_default=True,
              help="Realm-wide limit of new help requests per hour (0 = no limit).")
@click.option("--help-user-rate", "help_user_rate", type=click.IntRange(0, HELP_RATE_MAX), default=None,
              help="Help requests one user may file a day (0 = no limit). Default: keep the current (3 at first).")
@click.option("--help-address-rate", "help_address_rate", type=click.IntRange(0, HELP_RATE_MAX), default=None,
              help="Help requests one source address may file an hour (0 = no limit). Default: keep the current "
                   "(5 at first).")
@click.option("--help-expiry", "help_expiry", type=click.IntRange(1, HELP_EXPIRY_MAX_DAYS), default=None,
              metavar="DAYS", help="Days after which an unanswered help request expires. Default: keep the "
                                   "current (7 at first).")
@click.option("--help-admins", "help_admins", metavar="group:PATH|role:NAME|none",
              help="Who is e-mailed about a new help request (\"I lost my phone\"). Default: keep the current.")
@click.option("--trust-idp", "trust_idp", multiple=True, metavar="ALIAS|none",
              help="An identity provider whose logins need no second factor here (it enforces its own MFA); "
                   "repeatable; none: trust no provider. Default: keep the current (none at first).")
@click.option("--kerberos", type=click.Choice(KERBEROS_CHOICES), default=None,
              help="A Kerberos (SPNEGO) login: second-factor (default; the adapted flow does not let a ticket alone "
                   "sign in) or trusted (it needs no second factor). Default: keep the current.")
@click.option("--expiry-task", "expiry_task", type=click.Choice(("on", "off")), default=None,
              help="Provider mode: the provider's expiry task ends this realm's bypasses and grace sessions "
                   "inside Keycloak (on), or `twostep sync` does (off). Default: keep the current (on).")
@click.option("--bypass-kinds", "bypass_kinds", metavar="pass,password", default=None,
              help="Which kinds of bypass admins may grant: pass (an access pass, still two-step), password "
                   "(the password alone); comma-separated. Default: keep the current (both at first).")
@click.option("--bypass-default", "bypass_default", type=click.Choice(BYPASS_KINDS), default=None,
              help="The kind a grant gets when it names none (and the pages preselect). Default: keep the "
                   "current (pass at first; fallback mode grants the password alone by default).")
@json_option
def setup(dry_run: bool, enforce: tuple[str, ...], grace_days: int, bypass_max: str, otp_algorithm: str,
          otp_digits: int, otp_period: int, otp_look_around: int, theme: str | None, no_service_client: bool,
          secret_file: str | None, web_url: str | None, web_secret_file: str | None, decide_with: str,
          backup_codes: str, help_requests: str | None, help_rate: int, help_admins: str | None,
          expiry_task: str | None, trust_idp: tuple[str, ...], kerberos: str | None, help_user_rate: int | None,
          help_address_rate: int | None, help_expiry: int | None, bypass_kinds: str | None,
          bypass_default: str | None, as_json: bool) -> None:
    """Put a realm under the two-step policy (idempotent)."""
    kinds = parse_bypass_kinds(bypass_kinds) if bypass_kinds is not None else None
    admins = parse_help_admins(help_admins) if help_admins is not None else None
    otp = OtpPolicy(algorithm=otp_algorithm, digits=otp_digits, period=otp_period, look_around=otp_look_around)
    otp.validate()
    max_s = int(parse_duration(bypass_max).total_seconds())
    if max_s > HARD_BYPASS_MAX_S or max_s < 300:
        raise InvalidInput("--bypass-max must be between 5m and 30d")
    desired = Desired(otp=otp, brute=BruteForce(), enforcement=Enforcement.parse(enforce, grace_days),
                      bypass_max_s=max_s, theme=theme, service_client=not no_service_client,
                      web_url=normalize_url(web_url) if web_url else None, decide_with=decide_with,
                      backup_codes=backup_codes, help_requests=help_requests or "auto", help_rate=help_rate,
                      help_admins=admins, expiry_task=expiry_task, trusted_idps=_trust(trust_idp), kerberos=kerberos,
                      help_limits=tuple((k, v) for k, v in (("help_max_per_user_day", help_user_rate),
                                                            ("help_max_per_address_hour", help_address_rate),
                                                            ("help_expiry_days", help_expiry)) if v is not None),
                      bypass_kinds=kinds, bypass_default=bypass_default)
    for path in (secret_file, web_secret_file):
        if path:
            check_writable_new_file(path)
    a = app()
    kc = a.client()
    if admins:
        check_help_admins(kc, admins)
    now = a.clock()
    actions = plan(desired, read_actual(kc, desired, now), now)
    texts = [x.text for x in actions]
    if dry_run:
        _print_plan(texts, True, as_json)
        return

    shown: list[str] = []

    def secret(name: str, value: str) -> None:
        target = web_secret_file if name == WEB_CLIENT_ID else secret_file
        if target:
            write_secret_file(target, value + "\n")
            shown.append(f"client secret of {name!r} written to {target} (mode 0600)")
        else:
            shown.append(f"client secret of {name!r} (shown once, store it now): {value}")

    apply(kc, actions, secret)
    _print_plan(texts, False, as_json)
    for line in shown:
        click.echo(line, err=as_json)


def _trust(values: tuple[str, ...]) -> tuple[str, ...] | None:
    if not values:
        return None
    if "none" in values and len(values) > 1:
        raise InvalidInput("--trust-idp none cannot be combined with provider aliases")
    if any(not v.strip() for v in values):
        raise InvalidInput("--trust-idp takes an identity provider alias or none")
    return tuple(values)


@click.command()
@realm_options
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@json_option
def teardown(dry_run: bool, as_json: bool) -> None:
    """Restore the realm's previous flow bindings and remove the twostep flows."""
    kc = app().client()
    actions = plan_teardown(kc.get_realm(), {str(f["alias"]): str(f["id"]) for f in kc.flows()}, kc.clients(),
                            kc.identity_providers())
    if not dry_run:
        apply(kc, actions, lambda _n, _v: None)
    _print_plan([x.text for x in actions], dry_run, as_json)


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(f"realm {report.realm}: {'OK' if report.ok else 'NEEDS ATTENTION'}")
        for c in report.checks:
            line = f"  [{'ok' if c.ok else '!!'}] {c.name}: {c.detail}"
            if not c.ok and c.fix:
                line += f"  -> fix: {c.fix}"
            click.echo(line)
        for k, v in report.counts.items():
            click.echo(f"  {k.replace('_', ' ')}: {v}")
        for u in report.lists.get("not_enrolled", []):
            click.echo(f"  not enrolled: {u['username']}, {app().when(u['deadline'], 'deadline')}")
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command()
@realm_options
@json_option
def status(as_json: bool) -> None:
    """Whether each part of the policy is in place, what drifted, and counts."""
    a = app()
    _print_report(realm_status(a.client(), a.clock()), as_json)


@click.command()
@realm_options
@json_option
def doctor(as_json: bool) -> None:
    """Check connection, credentials, Keycloak version and features, each with its fix."""
    _print_report(run_doctor(app().client()), as_json)
