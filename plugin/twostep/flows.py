"""The login flows: the realm's own flow read back from Keycloak, adapted (not replaced), and built.

`twostep browser` is a deep copy of whatever browser flow the realm had bound, with the twostep
condition put first into each second-factor conditional subflow. Every other step, requirement and
config stays as the realm's admins made it (cookie, Kerberos, identity providers, Organizations,
identity-first login, WebAuthn, passkeys, custom steps). The same for `twostep reset credentials`.

Here: the flow as data (`FlowSpec`, `Step`, `Sub`), read from Keycloak, fingerprinted, printed,
compared, and built. The adapting itself (pure, no Keycloak calls) is `flow_adapt.adapt`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Union

from .errors import TwostepError
from .keycloak_adapter import JSON, KeycloakClient
from .policy import BYPASS_ATTR, BYPASS_VALUE, CONDITION_PROVIDER, REALM_FLOWS

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Step:
    provider: str
    requirement: str
    config: Pairs | None = None
    # How the step came to be in an adapted flow (for the --dry-run tree); not part of its shape.
    note: str = field(default="", compare=False)


@dataclass(frozen=True)
class Sub:
    alias: str
    requirement: str
    children: tuple[Node, ...]
    note: str = field(default="", compare=False)


Node = Union[Step, Sub]  # noqa: UP007 - a runtime alias used before `|` unions of forward refs work


@dataclass(frozen=True)
class FlowSpec:
    alias: str
    description: str
    children: tuple[Node, ...]


ADDED = "added"

# `not=true`: the step runs unless the user's OWN attribute equals the marker value. A missing or
# renamed attribute, or the value on a group (include_group_attributes=false), means "run it".
MARKER_CONDITION: Pairs = (
    ("attribute_expected_value", BYPASS_VALUE),
    ("attribute_name", BYPASS_ATTR),
    ("include_group_attributes", "false"),
    ("not", "true"),
    ("regex", "false"),
)

# Steps that ask for a second factor. A conditional subflow holding one of them is where the
# twostep condition goes; one that runs with no conditional subflow around it cannot be guarded.
DIRECT_GRANT_OTP = "direct-grant-validate-otp"
SECOND_FACTOR_STEPS = frozenset({"auth-otp-form", "webauthn-authenticator", "auth-recovery-authn-code-form",
                                 "auth-conditional-otp-form", DIRECT_GRANT_OTP})
PASSWORD_STEPS = ("auth-username-password-form", "auth-password-form")
DIRECT_GRANT_PASSWORD = ("direct-grant-validate-password",)
RESET_ANCHOR = "reset-credential-email"
RECOVERY_FORM = "auth-recovery-authn-code-form"
WEBAUTHN_FORM = "webauthn-authenticator"
KERBEROS = "auth-spnego"


class CannotAdapt(TwostepError, exit_code=9):
    """The realm's flow has a shape where no condition can safely guard the second factor."""


def provider_condition() -> Step:
    """Provider mode: the server decides (bypass window, scope, grace, enrollment) at each login."""
    return Step(CONDITION_PROVIDER, "REQUIRED", None, ADDED)


HELP_PROVIDER = "twostep-help-request"
HELP_RATE_KEY = "twostep.help.max_per_hour"
DEFAULT_HELP_RATE = 20


def help_step(max_per_hour: int = DEFAULT_HELP_RATE) -> Step:
    """Provider mode: "I lost my phone: ask an administrator", the last alternative of the
    second-factor subflow (docs/formats.md, "Help requests"). It never signs anyone in."""
    return Step(HELP_PROVIDER, "ALTERNATIVE", ((HELP_RATE_KEY, str(max_per_hour)),), ADDED)


PASS_PROVIDER = "twostep-access-pass"


def access_pass_step() -> Step:
    """Provider mode, browser flows: the access pass an admin granted, accepted in place of the code
    (docs/provider.md, "The access pass"); offered only to a user holding a usable pass."""
    return Step(PASS_PROVIDER, "ALTERNATIVE", None, ADDED)


def marker_condition() -> Step:
    """Fallback mode: the admin-only marker attribute, ended by sync."""
    return Step("conditional-user-attribute", "REQUIRED", MARKER_CONDITION, ADDED)


# -- the subflow added where a realm's flow has none ----------------------------------------------

def second_factor_subflow(alias: str, condition: Step, webauthn: bool, codes: bool, help: Step | None = None,
                   direct_grant: bool = False) -> Sub:
    # conditional-user-configured: only users who HAVE a second factor get here; with ALTERNATIVE
    # steps only, Keycloak would end on an error page for a user with none of them.
    if direct_grant:  # a password grant checks the `otp`/`totp` parameter; the condition refuses the rest
        return Sub(alias, "CONDITIONAL", (condition, Step("conditional-user-configured", "REQUIRED"),
                                          Step(DIRECT_GRANT_OTP, "REQUIRED")), ADDED)
    steps: list[Node] = [condition, Step("conditional-user-configured", "REQUIRED"),
                         Step("auth-otp-form", "ALTERNATIVE")]
    if webauthn:
        steps.append(Step(WEBAUTHN_FORM, "ALTERNATIVE"))
    if codes:
        steps.append(Step(RECOVERY_FORM, "ALTERNATIVE"))
    if condition.provider == CONDITION_PROVIDER:
        steps.append(access_pass_step())
    if help is not None:
        steps.append(help)
    return Sub(alias, "CONDITIONAL", tuple(steps), ADDED)


# -- reading -------------------------------------------------------------------------------------

def read_flow(kc: KeycloakClient, alias: str) -> FlowSpec | None:
    """The flow as Keycloak has it (every config key of every step), None when it does not exist."""
    flows = {f["alias"]: f for f in kc.flows()}
    if alias not in flows:
        return None
    flat = kc.flow_executions(alias)
    pos = 0

    def build(level: int) -> tuple[Node, ...]:
        nonlocal pos
        out: list[Node] = []
        while pos < len(flat) and flat[pos]["level"] >= level:
            ex = flat[pos]
            pos += 1
            if ex.get("authenticationFlow"):
                out.append(Sub(ex["displayName"], ex["requirement"], build(level + 1)))
            else:
                config: Pairs | None = None
                if ex.get("authenticationConfig"):
                    raw = kc.execution_config(ex["authenticationConfig"]).get("config") or {}
                    config = tuple((k, str(raw[k])) for k in sorted(raw))
                out.append(Step(ex.get("providerId", ""), ex["requirement"], config))
        return tuple(out)

    return FlowSpec(alias, flows[alias].get("description", ""), build(0))


def digest(spec: FlowSpec) -> str:
    """A short fingerprint of a flow's shape (subflow names, steps, requirements, configs), kept in
    the policy record so status can tell when the realm's own flow changed after setup."""

    def enc(nodes: tuple[Node, ...]) -> list[object]:
        return [["sub", n.alias, n.requirement, enc(n.children)] if isinstance(n, Sub)
                else ["step", n.provider, n.requirement, [list(p) for p in n.config or ()]] for n in nodes]

    return hashlib.sha256(json.dumps(enc(spec.children), separators=(",", ":")).encode()).hexdigest()[:16]


def tree(spec: FlowSpec, source: str | None = None) -> str:
    """The flow as an indented tree; what setup adds or changes is marked."""
    head = "    " + spec.alias + (f"  (copy of {source!r})" if source else "")
    lines = [head]

    def walk(nodes: tuple[Node, ...], prefix: str) -> None:
        for i, n in enumerate(nodes):
            last = i == len(nodes) - 1
            branch = "└── " if last else "├── "
            name = f"[{n.alias}]" if isinstance(n, Sub) else n.provider
            mark = "  <- added" if n.note == ADDED else (f"  <- {n.note}" if n.note else "")
            lines.append(f"{prefix}{branch}{name}  {n.requirement}{mark}")
            if isinstance(n, Sub):
                walk(n.children, prefix + ("    " if last else "│   "))

    walk(spec.children, "    " * 2)
    return "\n".join(lines)


def differences(spec: FlowSpec, actual: FlowSpec | None) -> list[str]:
    """Human-readable drift, empty when the flow is exactly as specified."""
    if actual is None:
        return [f"flow {spec.alias!r} is missing"]
    out: list[str] = []
    _diff(spec.children, actual.children, spec.alias, out)
    return out


def _diff(want: tuple[Node, ...], have: tuple[Node, ...], where: str, out: list[str]) -> None:
    for i in range(max(len(want), len(have))):
        w = want[i] if i < len(want) else None
        h = have[i] if i < len(have) else None
        if w is None and h is not None:
            out.append(f"{where}: unexpected step {_name(h)}")
        elif h is None and w is not None:
            out.append(f"{where}: missing step {_name(w)}")
        elif isinstance(w, Sub) and isinstance(h, Sub):
            if (w.alias, w.requirement) != (h.alias, h.requirement):
                out.append(f"{where}: subflow {h.alias!r} is {h.requirement}, expected {w.alias!r} {w.requirement}")
            _diff(w.children, h.children, w.alias, out)
        elif isinstance(w, Step) and isinstance(h, Step):
            if w.provider != h.provider:
                out.append(f"{where}: step {i + 1} is {h.provider!r}, expected {w.provider!r}")
            elif w.requirement != h.requirement:
                out.append(f"{where}: {w.provider} is {h.requirement}, expected {w.requirement}")
            elif w.config != h.config:
                what = "config" if w.provider == HELP_PROVIDER else "condition config"
                out.append(f"{where}: {w.provider} {what} is damaged or missing"
                           if w.note == ADDED else f"{where}: {w.provider} config differs")
        elif w is not None and h is not None:
            out.append(f"{where}: step {i + 1} is {_name(h)}, expected {_name(w)}")


def _name(n: Node) -> str:
    return f"subflow {n.alias!r}" if isinstance(n, Sub) else repr(n.provider)


# -- building ------------------------------------------------------------------------------------

def build_adapted(kc: KeycloakClient, source: str, spec: FlowSpec) -> None:
    """Deep-copy the realm's flow (Keycloak copies subflows and configs), then add what `adapt`
    added, each at its place. The result is read back: a flow that is not exactly the adapted
    form is deleted again, so a half-built or misordered flow is never left to be bound."""
    kc.copy_flow(source, spec.alias)
    try:
        _amend(kc, spec.alias, spec.children)
        drift = differences(spec, read_flow(kc, spec.alias))
        if drift:
            raise TwostepError(f"the adapted flow {spec.alias!r} did not come out as planned: " + "; ".join(drift))
    except BaseException:
        realm = kc.get_realm()
        fid = flow_id(kc, spec.alias)
        if fid and spec.alias not in {realm.get(k) for k in REALM_FLOWS}:
            kc.delete_flow(fid, spec.alias)
        raise


def _level0(kc: KeycloakClient, parent: str) -> list[JSON]:
    return [e for e in kc.flow_executions(parent) if e["level"] == 0]


def _amend(kc: KeycloakClient, parent: str, nodes: tuple[Node, ...]) -> None:
    for i, node in enumerate(nodes):
        if node.note == ADDED:
            count = len(_level0(kc, parent))
            created = _create(kc, parent, node)
            for _ in range(count - i):  # appended last; move it up to its place
                kc.raise_priority(created["id"])
        elif node.note:  # a copied step whose requirement the policy changes
            kc.set_requirement(parent, _level0(kc, parent)[i], node.requirement)
        elif isinstance(node, Sub):
            _amend(kc, node.alias, node.children)


def _create(kc: KeycloakClient, parent: str, node: Node) -> JSON:
    if isinstance(node, Sub):
        kc.add_subflow(parent, node.alias)
    else:
        kc.add_execution(parent, node.provider)
    created: JSON = _level0(kc, parent)[-1]
    kc.set_requirement(parent, created, node.requirement)
    if isinstance(node, Sub):
        add_nodes(kc, node.alias, node.children)
    elif node.config:
        # The parent's alias is unique in the realm, so the config alias is too.
        kc.add_execution_config(created["id"], f"{parent} {node.provider}", dict(node.config))
    return created


def add_nodes(kc: KeycloakClient, parent: str, nodes: tuple[Node, ...]) -> None:
    for node in nodes:
        _create(kc, parent, node)


def flow_id(kc: KeycloakClient, alias: str) -> str | None:
    for f in kc.flows():
        if f["alias"] == alias:
            return str(f["id"])
    return None
