"""`twostep doctor`: can this host work with this Keycloak (connection, version, theme, the
authenticators and required actions setup needs, the bindings), with the checks it shares with
`twostep status` (`realm_status`)."""

from __future__ import annotations

from datetime import UTC, datetime

from . import flows
from .errors import Forbidden, NotFound, TwostepError
from .keycloak_adapter import KeycloakClient
from .policy import CONDITION_PROVIDER, REALM_FLOWS
from .realm_policy import policy_of
from .realm_status import (
    Check,
    Report,
    account_check,
    decision_check,
    expiry_check,
    federation_checks,
    first_factor_checks,
)

TESTED_VERSIONS = ((26, 4, 0), (26, 7, 3))
"""The Keycloak releases CI runs the suite against (lowest minor and the pin): deploy/local/run-tests.sh."""


def _vstr(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def version_check(version: str) -> Check:
    """Keycloak's version against the tested range: inside it passes; outside it (older, newer, or
    unreadable) it fails, saying which range was tested, because nothing vouches for it there."""
    lo, hi = TESTED_VERSIONS
    tested = f"tested: {_vstr(lo)} to {_vstr(hi)}"
    fix = (f"run Keycloak {_vstr(lo)}-{_vstr(hi)}, or run the test suite against this release first "
           "(KEYCLOAK_VERSION=X.Y.Z bash deploy/local/run-tests.sh)")
    parts = version.split("-", 1)[0].split(".")
    try:
        v = tuple(int(x) for x in parts[:3])
    except ValueError:
        v = ()
    if len(v) != 3:
        return Check("Keycloak version", False, f"{version!r} is not a release number; untested ({tested})", fix)
    if v < lo:
        return Check("Keycloak version", False, f"{version} is older than the tested range ({tested})", fix)
    if v > hi:
        return Check("Keycloak version", False, f"{version} is newer than the tested range: untested ({tested})", fix)
    return Check("Keycloak version", True, f"{version} ({tested})")


def doctor(kc: KeycloakClient) -> Report:
    report = Report(kc.realm)
    s = kc.settings
    try:
        kc.get_realm()
    except (NotFound, TwostepError) as exc:
        report.checks.append(Check("connection and credentials", False, str(exc),
                                   "check TWOSTEP_URL, TWOSTEP_REALM and the credentials"))
        return report
    who = f"service account {s.client_id}" if s.uses_service_account else f"admin {s.admin_username}"
    report.checks.append(Check("connection and credentials", True, f"{s.url}, realm {kc.realm}, as {who}"))
    try:
        info = kc.server_info()
        version = info.get("systemInfo", {}).get("version", "?")
        report.checks.append(version_check(str(version)))
        themes = {t["name"] for t in info.get("themes", {}).get("login", [])}
        report.checks.append(Check("login theme 'twostep' visible", "twostep" in themes,
                                   "found" if "twostep" in themes else "not found",
                                   "copy themes/twostep into Keycloak's themes/ or the theme JAR into providers/"))
    except Forbidden:
        report.checks.append(Check("Keycloak version", True, "not readable with these credentials (needs view-system)"))
    providers = kc.authenticator_providers()
    for pid in ("auth-otp-form", "auth-recovery-authn-code-form", "conditional-user-attribute",
                "conditional-user-configured"):
        found = pid in providers
        report.checks.append(Check(f"authenticator {pid}", found, "present" if found else "missing",
                                   "upgrade Keycloak to 26.3 or later"))
    ras = {r["alias"]: r for r in kc.required_actions()}
    for alias in ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"):
        ra = ras.get(alias)
        report.checks.append(Check(f"required action {alias}", bool(ra and ra.get("enabled")),
                                   "enabled" if ra and ra.get("enabled") else "missing or disabled",
                                   f"twostep setup --realm {kc.realm}"))
    realm = kc.get_realm()
    reading = policy_of(realm)
    policy = reading.policy if reading.present else None
    report.checks.append(decision_check(kc.realm, policy, CONDITION_PROVIDER in providers))
    report.checks.append(account_check(kc, reading.policy))
    if policy is not None and reading.intact and policy.provider_mode:
        report.checks.append(expiry_check(kc, policy, datetime.now(UTC)))
    if policy is not None and policy.provider_mode and policy.help_requests == "on":
        found = flows.HELP_PROVIDER in providers
        report.checks.append(Check(f"authenticator {flows.HELP_PROVIDER}", found,
                                   "present (help requests on)" if found else "missing: the provider JAR is older "
                                   "than help requests, the browser flow cannot run its help step",
                                   "install the current twostep provider JAR (docs/provider.md), or "
                                   f"twostep setup --realm {kc.realm} --help-requests off"))
    for key, (alias, _default) in REALM_FLOWS.items():
        report.checks.append(Check(f"{key} binding", realm.get(key) == alias, f"bound to {realm.get(key)!r}",
                                   f"twostep setup --realm {kc.realm}"))
    bound = flows.read_flow(kc, str(realm.get("browserFlow") or ""))
    if bound is not None:
        report.checks.extend(first_factor_checks(bound, reading.policy.kerberos, f"twostep setup --realm {kc.realm}"))
    store = reading.policy.record_store
    report.checks.extend(federation_checks(kc, store, test_connections=True))
    return report
