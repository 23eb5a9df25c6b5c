"""`twostep status` and `twostep doctor`: what is in place, what drifted, and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from . import flows
from .bypass import list_bypasses
from .enforcement import users_in_scope
from .errors import Forbidden, NotFound, TwostepError
from .keycloak_adapter import KeycloakClient
from .policy import ADMIN_ONLY_ATTRS, BROWSER_FLOW, RESET_FLOW, RealmPolicy
from .realm_setup import Desired, read_actual

COUNT_LIMIT = 5000


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


@dataclass
class Report:
    realm: str
    checks: list[Check] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"realm": self.realm, "ok": self.ok, "checks": [asdict(c) for c in self.checks], "counts": self.counts}


def realm_status(kc: KeycloakClient, now: datetime, count_limit: int = COUNT_LIMIT) -> Report:
    report = Report(kc.realm)
    realm = kc.get_realm()
    policy, intact = RealmPolicy.effective(realm.get("attributes") or {})
    setup_fix = f"twostep setup --realm {kc.realm}"
    report.checks.append(Check("policy record", intact,
                               policy.enforcement.describe() if intact else
                               "missing or damaged: acting as 'everyone, no grace, 1 h bypass maximum'", setup_fix))
    desired = Desired(enforcement=policy.enforcement, bypass_max_s=policy.bypass_max_s, service_client=False)
    actual = read_actual(kc, desired, now)

    otp_ok = realm.get("otpPolicyCodeReusable") is False and realm.get("otpPolicyType") in ("totp", "hotp")
    report.checks.append(Check("OTP policy", otp_ok,
                               f"{realm.get('otpPolicyType')} {realm.get('otpPolicyAlgorithm')} "
                               f"{realm.get('otpPolicyDigits')} digits {realm.get('otpPolicyPeriod')}s "
                               f"look-around {realm.get('otpPolicyLookAheadWindow')}, "
                               f"reuse {'on' if realm.get('otpPolicyCodeReusable') else 'off'}", setup_fix))
    report.checks.append(Check("brute-force detection", bool(realm.get("bruteForceProtected")),
                               f"lock after {realm.get('failureFactor')} failures"
                               if realm.get("bruteForceProtected") else "off", setup_fix))
    report.checks.append(Check("admin events", bool(realm.get("adminEventsEnabled")),
                               "on" if realm.get("adminEventsEnabled") else "off", setup_fix))
    for ra in actual.required_actions:
        if ra["alias"] in ("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"):
            report.checks.append(Check(f"required action {ra['alias']}", bool(ra.get("enabled")),
                                       "enabled" if ra.get("enabled") else "disabled", setup_fix))
    decls = {a["name"]: a for a in actual.profile.get("attributes", [])}
    bad = [n for n in ADMIN_ONLY_ATTRS
           if n not in decls or decls[n].get("permissions") != {"view": ["admin"], "edit": ["admin"]}]
    report.checks.append(Check("bypass marker declaration", not bad,
                               "admin-only" if not bad else "missing or not admin-only: " + ", ".join(bad), setup_fix))
    for spec, have, key in ((flows.browser_spec(), actual.browser, "browserFlow"),
                            (flows.reset_spec(), actual.reset, "resetCredentialsFlow")):
        drift = flows.differences(spec, have)
        report.checks.append(Check(f"flow {spec.alias!r}", not drift, "as specified" if not drift else "; ".join(drift),
                                   setup_fix))
        bound = realm.get(key)
        report.checks.append(Check(f"{key} binding", bound == spec.alias, f"bound to {bound!r}", setup_fix))

    report.counts = _counts(kc, policy, count_limit)
    # Keycloak's flow has no clock: only a twostep process ends a bypass. A bypass past its time
    # means the sync job is not running, so status fails loudly (and the alert rule fires).
    bypasses = list_bypasses(kc, lambda: now)
    overdue = [b for b in bypasses if b["state"] in ("expired", "no-valid-record")]
    report.counts["bypassed_now"] = sum(1 for b in bypasses if b["state"] == "active")
    report.checks.append(Check(
        "bypasses ended on time", not overdue,
        "none overdue" if not overdue else
        f"{len(overdue)} bypass(es) past their time or without a valid record: "
        + ", ".join(sorted(b["username"] for b in overdue)[:10]) + " - is `twostep sync` running?",
        f"twostep sync --realm {kc.realm}; then schedule it (deploy/cron, deploy/systemd, deploy/kubernetes)"))
    return report


def _counts(kc: KeycloakClient, policy: RealmPolicy, limit: int) -> dict[str, Any]:
    in_scope = enrolled = with_codes = 0
    complete = True
    for user in users_in_scope(kc, policy):
        if in_scope >= limit:
            complete = False
            break
        in_scope += 1
        enrolled += 1 if user.get("totp") else 0
        types = {c.get("type") for c in kc.user_credentials(user["id"])}
        with_codes += 1 if "recovery-authn-codes" in types else 0
    return {"users_in_scope": in_scope, "enrolled_otp": enrolled, "with_backup_codes": with_codes,
            "complete": complete}


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
        report.checks.append(Check("Keycloak version", version.startswith("26."), version,
                                   "keycloak-twostep supports Keycloak 26.x"))
        themes = {t["name"] for t in info.get("themes", {}).get("login", [])}
        report.checks.append(Check("login theme 'twostep' visible", "twostep" in themes,
                                   "found" if "twostep" in themes else "not found",
                                   "copy themes/twostep into Keycloak's themes/ or the theme JAR into providers/"))
    except Forbidden:
        report.checks.append(Check("Keycloak version", True, "not readable with these credentials (needs view-system)"))
    providers = {p["id"] for p in kc.get("/authentication/authenticator-providers", "authenticators") or []}
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
    for key, alias in (("browserFlow", BROWSER_FLOW), ("resetCredentialsFlow", RESET_FLOW)):
        report.checks.append(Check(f"{key} binding", realm.get(key) == alias, f"bound to {realm.get(key)!r}",
                                   f"twostep setup --realm {kc.realm}"))
    return report
