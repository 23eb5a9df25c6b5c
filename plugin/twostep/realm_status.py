"""`twostep status`: what is in place, what drifted, and how to fix it; the checks `doctor` shares."""

from __future__ import annotations

import heapq
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from . import client_doors, coverage, expiry_task, federation, first_factors, flows, help_notify, idp_doors
from .backup_codes import LOW_WARNING
from .bypass import list_bypasses
from .errors import Forbidden, TwostepError
from .keycloak_adapter import KeycloakClient
from .policy import (
    ADMIN_ONLY_ATTRS,
    CONDITION_PROVIDER,
    REALM_FLOWS,
    SERVICE_CLIENT_ID,
    RealmPolicy,
    service_roles,
    utc_iso,
)
from .realm_policy import policy_of, recorded_value
from .realm_setup import Desired, read_actual, source_flows

COUNT_LIMIT = 5000
LIST_LIMIT = 50
"""Longest list of named users (not yet enrolled, low on backup codes) a report carries."""


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
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Bounded lists of named users ("not_enrolled", "low_backup_codes"), first LIST_LIMIT each."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"realm": self.realm, "ok": self.ok, "checks": [asdict(c) for c in self.checks], "counts": self.counts,
                "lists": self.lists}


def realm_status(kc: KeycloakClient, now: datetime, count_limit: int = COUNT_LIMIT) -> Report:
    report = Report(kc.realm)
    realm = kc.get_realm()
    reading = policy_of(realm)
    policy, intact = reading.policy, reading.intact
    setup_fix = f"twostep setup --realm {kc.realm}"
    report.checks.append(Check("policy record", intact,
                               policy.enforcement.describe() if intact else
                               "missing or damaged: acting as 'everyone, no grace, 1 h bypass maximum'", setup_fix))
    desired = Desired(enforcement=policy.enforcement, bypass_max_s=policy.bypass_max_s, service_client=False,
                      decide_with="sync" if intact and not policy.provider_mode else "auto",
                      backup_codes=policy.backup_codes,
                      help_requests=policy.help_requests if policy.provider_mode else "off",
                      help_rate=policy.help_max_per_hour)
    actual = read_actual(kc, desired, now)
    report.checks.append(decision_check(kc.realm, policy if intact else None, actual.provider_loaded))
    report.checks.append(account_check(kc, policy))
    if intact and policy.provider_mode:
        report.checks.append(expiry_check(kc, policy, now))

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
    for t in actual.flows:
        recorded = policy.source_digest(t.key)
        if t.error:
            report.checks.append(Check(f"flow {t.alias!r}", False, t.error, f"change {t.source!r}, then {setup_fix}"))
        else:
            assert t.desired is not None
            drift = flows.differences(t.desired, t.actual)
            report.checks.append(Check(f"flow {t.alias!r}", not drift,
                                       f"the realm's flow {t.source!r} adapted" if not drift else "; ".join(drift),
                                       setup_fix))
        if intact and recorded:
            same = recorded == t.digest
            report.checks.append(Check(
                f"source flow {t.source!r}", same, "unchanged since setup" if same else
                f"changed since setup: {t.alias!r} no longer matches it", f"{setup_fix} (adapts it again)"))
        if t.key in REALM_FLOWS:
            bound = realm.get(t.key)
            report.checks.append(Check(f"{t.key} binding", bound == t.alias, f"bound to {bound!r}", setup_fix))
    for t in actual.flows:
        # Browser flows only: in a first-broker-login flow the alternatives (create the account, verify
        # by e-mail) are followed by the post-broker-login flow, which decides.
        if t.desired is not None and t.actual is not None and t.key in ("browserFlow", "client:browser"):
            report.checks.extend(first_factor_checks(t.actual, policy.kerberos, setup_fix))
    report.checks.extend(override_checks(actual.overrides, source_flows(realm, policy if intact else None),
                                         setup_fix))
    report.checks.extend(idp_checks(actual.idps, actual.idp_specs, policy.trusted_idps if intact else (),
                                    actual.post_flow, actual.post_flow_actual, setup_fix))

    report.checks.extend(federation_checks(kc, policy.record_store))
    report.checks.append(_help_admins_check(kc, realm, policy))
    bypasses = list_bypasses(kc, lambda: now)
    report.counts, report.lists = scope_counts(kc, policy, count_limit, now,
                                                bypassed={b["user_id"] for b in bypasses if b["bypassed"]})
    # Without the provider the flow has no clock: only a twostep process ends a bypass, so one past
    # its time means the sync job is not running: status fails loudly (and the alert rule fires).
    # With the provider the server already asks again; what is left is clean-up (sessions, record).
    overdue = [b for b in bypasses if b["state"] in ("expired", "no-valid-record", "too-long")]
    report.counts["bypassed_now"] = sum(1 for b in bypasses if b["state"] == "active")
    report.checks.append(Check(
        "bypasses ended on time", not overdue or policy.provider_mode,
        "none overdue" if not overdue else
        f"{len(overdue)} bypass(es) past their time or without a valid record: "
        + ", ".join(sorted(b["username"] for b in overdue)[:10]) + " - is `twostep sync` running?",
        f"twostep sync --realm {kc.realm}; then schedule it (deploy/cron, deploy/systemd, deploy/kubernetes)"))
    return report


def first_factor_checks(spec: flows.FlowSpec, kerberos: str, setup_fix: str) -> list[Check]:
    """Every enabled first factor after which the second factor does not run (docs/architecture.md,
    "Doors"), each with its fix; Kerberos passes when the policy trusts it (`setup --kerberos`)."""
    out: list[Check] = []
    for step, where in first_factors.skipping_first_factors(spec):
        name = f"first factor {step!r} in {where!r}"
        if step == flows.KERBEROS:
            trusted = kerberos == "trusted"
            out.append(Check(name, trusted, "trusted (setup --kerberos trusted): a Kerberos login needs no second "
                             "factor" if trusted else "a Kerberos login skips the second factor",
                             f"{setup_fix} --kerberos second-factor (or --kerberos trusted to accept it)"))
        else:
            out.append(Check(name, False, "ALTERNATIVE beside the second factor: when it succeeds the second "
                             "factor does not run", f"set it DISABLED in the realm's own flow (or put it into the "
                             f"subflow before the second factor), then {setup_fix}"))
    return out


def override_checks(overrides: list[client_doors.Override] | None, sources: dict[str, str],
                    setup_fix: str) -> list[Check]:
    """One check per client flow override (a door of its own): bound to the adapted flow, or not."""
    if overrides is None:
        return [Check("client flow overrides", True, "not checked with these credentials (needs view-clients)")]
    out: list[Check] = []
    for o in overrides:
        want = client_doors.target_alias(o, sources)
        ok = o.bound == want
        out.append(Check(f"client {o.client_id!r} {o.kind} override", ok,
                         f"bound to {o.bound!r}" + ("" if ok else f": the second factor is not decided there "
                                                    f"(should be {want!r})"), f"{setup_fix} (adapts it)"))
    return out


def idp_checks(idps: list[idp_doors.IdpDoor] | None, specs: dict[str, flows.FlowSpec | None],
               trusted: tuple[str, ...], post: flows.FlowSpec | None, post_actual: flows.FlowSpec | None,
               setup_fix: str) -> list[Check]:
    """One check per identity provider (brokered logins are a door): its flows, and whether the policy
    trusts it (then its logins need no second factor here)."""
    if idps is None:
        return [Check("identity providers", True, "not checked with these credentials (needs view-identity-providers)")]
    out: list[Check] = []
    if post is not None:
        drift = flows.differences(post, post_actual)
        out.append(Check(f"flow {post.alias!r}", not drift, "; ".join(drift) or "as planned", setup_fix))
    for idp in idps:
        want = idp_doors.wanted(idp, specs)
        wrong = [f"{k} is {v!r}, should be {want[k]!r}" for k, v in
                 ((idp_doors.FIRST, idp.first), (idp_doors.POST, idp.post)) if v != want[k]]
        trust = ("trusted: its logins need no second factor here" if idp.alias in trusted
                 else "not trusted: its logins get the browser's decision")
        out.append(Check(f"identity provider {idp.alias!r}", not wrong,
                         trust if not wrong else "; ".join(wrong) + ": the second factor is not decided there",
                         f"{setup_fix} (adapts it)"))
    return out


def _help_admins_check(kc: KeycloakClient, realm: Any, policy: RealmPolicy) -> Check:
    """Who hears of a new help request: a malformed `help_admins` reads as nobody (the record stays
    readable), so status says so; a group or role that is gone, or nobody with an address, too."""
    name = "help request e-mails"
    fix = f"twostep setup --realm {kc.realm} --help-admins group:PATH|role:NAME|none"
    raw = recorded_value(realm, "help_admins") or ""  # a damaged record: the "policy record" check's to report
    if raw and not policy.help_admins:
        return Check(name, False, f"help_admins {raw!r} is not group:PATH or role:NAME: nobody is e-mailed", fix)
    if not policy.help_admins:
        return Check(name, True, "nobody is e-mailed (no help_admins); the queue: admin pages, `twostep help list`")
    try:
        count = len(help_notify.recipients(kc, policy.help_admins))
    except TwostepError as exc:
        return Check(name, False, str(exc), fix)
    return Check(name, count > 0, f"{policy.help_admins}: {count} recipient(s) with an e-mail address", fix)


def federation_checks(kc: KeycloakClient, record_store: str, test_connections: bool = False) -> list[Check]:
    """One check per federation setting that would stop twostep from working for its users."""
    try:
        comps, mappers = federation.read(kc)
    except Forbidden:
        return [Check("user federation", True, "not checked with these credentials (needs view-realm)")]
    found = federation.assess(comps, mappers, record_store, kc.realm)
    if test_connections:
        found += federation.reachability(kc, comps)
    return [Check(f.name, f.ok, f.detail, f.fix) for f in found]


PROVIDER_FIX = ("install the twostep provider JAR into Keycloak's providers/ (docs/provider.md), "
                "then run twostep setup again")


def decision_check(realm: str, policy: RealmPolicy | None, loaded: bool) -> Check:
    """Who ends a bypass on time: the provider at sign-in, or only the sync job."""
    name = "bypass expiry decided by"
    if policy is not None and policy.provider_mode:
        if loaded:
            return Check(name, True, "the server: the twostep provider's condition decides at every sign-in "
                                     "(bypass window, scope, grace, enrollment)")
        return Check(name, False, f"the flow uses {CONDITION_PROVIDER!r} but Keycloak does not have it loaded: "
                                  "sign-ins fail", PROVIDER_FIX)
    hint = (f"the provider is loaded: `twostep setup --realm {realm}` lets the server decide" if loaded
            else f"fix: {PROVIDER_FIX}")
    return Check(name, True, "sync only (fallback mode): a bypass ends only when `twostep sync` runs, "
                             "however long that takes, and grant, extend and revoke take a lock role, so "
                             f"they need manage-realm (with the provider, manage-users is enough); {hint}")


def expiry_check(kc: KeycloakClient, policy: RealmPolicy, now: datetime) -> Check:
    """Provider mode: who ends bypasses that are over (sessions included), and whether it is running."""
    ok, detail, fix = expiry_task.describe(policy, expiry_task.read(kc), now)
    return Check("bypass expiry", ok, detail, fix)


def scope_counts(kc: KeycloakClient, policy: RealmPolicy, limit: int, now: datetime, bypassed: set[str],
                 list_limit: int = LIST_LIMIT, states: dict[str, str] | None = None,
                 ) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """One walk over the users in scope (at most `limit`), one credentials read each (coverage.walk):
    the counts, plus the first `list_limit` users not yet enrolled (earliest grace deadline first) and
    low on backup codes (fewest left first). `states`, when given, receives user id -> coverage state
    (for the breakdown by group)."""
    in_scope = enrolled_otp = with_codes = 0
    tally = coverage.empty_tally()
    keys = 0
    complete = True
    next_deadline: datetime | None = None
    pending: list[tuple[datetime, str, dict[str, Any]]] = []
    low: list[tuple[int, str, dict[str, Any]]] = []
    for c in coverage.walk(kc, policy, now, bypassed):
        if in_scope >= limit:
            complete = False
            break
        in_scope += 1
        tally[c.state] += 1
        if states is not None:
            states[c.id] = c.state
        enrolled_otp += c.otp
        keys += c.key
        name = c.username
        if c.state == coverage.IN_GRACE:
            next_deadline = c.deadline if next_deadline is None else min(next_deadline, c.deadline)
        if c.state != coverage.ENROLLED:
            pending.append((c.deadline, name, {
                "id": c.id, "username": name, "deadline": utc_iso(c.deadline), "overdue": now >= c.deadline,
                "bypassed": c.state == coverage.BYPASSED, "pending": c.pending}))
        with_codes += c.has_codes
        if c.codes is not None and c.codes.remaining <= LOW_WARNING:
            low.append((c.codes.remaining, name,
                        {"id": c.id, "username": name, "remaining": c.codes.remaining, "total": c.codes.total}))
    counts = {"users_in_scope": in_scope, "enrolled_otp": enrolled_otp, "with_backup_codes": with_codes,
              "complete": complete, "not_enrolled": len(pending), "low_backup_codes": len(low),
              "enrolled": tally[coverage.ENROLLED], "enrolled_key": keys, "in_grace": tally[coverage.IN_GRACE],
              "overdue": tally[coverage.OVERDUE], "bypassed_not_enrolled": tally[coverage.BYPASSED],
              "next_deadline": utc_iso(next_deadline) if next_deadline else None}
    lists = {"not_enrolled": [e[2] for e in heapq.nsmallest(list_limit, pending, key=lambda e: e[:2])],
             "low_backup_codes": [e[2] for e in heapq.nsmallest(list_limit, low, key=lambda e: e[:2])]}
    return counts, lists


def account_check(kc: KeycloakClient, policy: RealmPolicy) -> Check:
    """The day-to-day account holds exactly its row of docs/operations.md ("Who needs which role"):
    more is a finding (a host running sync would be as strong as a realm admin), and so is less."""
    name = "account roles"
    s = kc.settings
    want = service_roles(policy.provider_mode)
    mode = ("provider mode" if policy.provider_mode else
            "fallback mode (no provider JAR): bypass changes and sync's ends take a lock that is a realm role, "
            "which needs manage-realm")
    if not s.uses_service_account:
        return Check(name, True, f"signed in as admin {s.admin_username!r}, which is for setup; day to day the "
                                 f"service account {SERVICE_CLIENT_ID!r} holds {', '.join(want)} ({mode})")
    held = kc.token_roles()
    if held is None:
        return Check(name, True, f"service account {s.client_id!r}: its token names no roles, not checked")
    extra, missing = sorted(held - set(want)), [r for r in want if r not in held]
    setup_fix = f"twostep setup --realm {kc.realm}, as a bootstrap admin (grants exactly {', '.join(want)})"
    if extra:
        fix = setup_fix if s.client_id == SERVICE_CLIENT_ID else \
            f"remove {', '.join(extra)} from the service account of client {s.client_id!r}"
        return Check(name, False, f"service account {s.client_id!r} holds more than it needs: {', '.join(extra)} "
                                  f"({mode}: exactly {', '.join(want)})", fix)
    if missing:
        return Check(name, False, f"service account {s.client_id!r} lacks {', '.join(missing)} ({mode})", setup_fix)
    return Check(name, True, f"service account {s.client_id!r}: exactly {', '.join(want)} ({mode})")
