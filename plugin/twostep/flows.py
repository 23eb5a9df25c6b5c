"""The login flows the policy needs, described as data, read back from Keycloak, and built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .keycloak_adapter import JSON, KeycloakClient
from .policy import BROWSER_FLOW, BYPASS_ATTR, BYPASS_VALUE, RESET_FLOW


@dataclass(frozen=True)
class Step:
    provider: str
    requirement: str
    config: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Sub:
    alias: str
    requirement: str
    children: tuple[Node, ...]


Node = Union[Step, Sub]  # noqa: UP007 - a runtime alias used before `|` unions of forward refs work


@dataclass(frozen=True)
class FlowSpec:
    alias: str
    description: str
    children: tuple[Node, ...]


# `not=true`: the step runs unless the user's OWN attribute equals the marker value. A missing or
# renamed attribute, or the value on a group (include_group_attributes=false), means "run it".
MARKER_CONDITION: tuple[tuple[str, str], ...] = (
    ("attribute_expected_value", BYPASS_VALUE),
    ("attribute_name", BYPASS_ATTR),
    ("include_group_attributes", "false"),
    ("not", "true"),
    ("regex", "false"),
)


def _second_factor(alias: str) -> Sub:
    # conditional-user-configured: only users who HAVE an OTP device or backup codes get here;
    # with ALTERNATIVE steps Keycloak would end on an error page for a user with neither.
    # Users in scope without a device get CONFIGURE_TOTP from the enforcement pass instead.
    return Sub(alias, "CONDITIONAL", (
        Step("conditional-user-attribute", "REQUIRED", MARKER_CONDITION),
        Step("conditional-user-configured", "REQUIRED"),
        Step("auth-otp-form", "ALTERNATIVE"),
        Step("auth-recovery-authn-code-form", "ALTERNATIVE"),
    ))


def browser_spec(alias: str = BROWSER_FLOW) -> FlowSpec:
    return FlowSpec(alias, "twostep: password, then OTP or a backup code unless bypassed", (
        Step("auth-cookie", "ALTERNATIVE"),
        Step("identity-provider-redirector", "ALTERNATIVE"),
        Sub(f"{alias} forms", "ALTERNATIVE", (
            Step("auth-username-password-form", "REQUIRED"),
            _second_factor(f"{alias} second factor"),
        )),
    ))


def reset_spec(alias: str = RESET_FLOW) -> FlowSpec:
    # Keycloak's own reset flow logs a user with OTP in without it (upstream issue 12759): ask for
    # the existing second factor after the e-mail link and before the new password.
    return FlowSpec(alias, "twostep: forgot password still asks for the second factor", (
        Step("reset-credentials-choose-user", "REQUIRED"),
        Step("reset-credential-email", "REQUIRED"),
        _second_factor(f"{alias} second factor"),
        Step("reset-password", "REQUIRED"),
    ))


Pairs = tuple[tuple[str, str], ...]


def _relevant(config: dict[str, str] | None, like: Pairs | None) -> Pairs | None:
    if config is None:
        return None
    keys = [k for k, _ in like] if like else sorted(config)
    return tuple((k, str(config.get(k, ""))) for k in keys)


def read_flow(kc: KeycloakClient, alias: str, spec: FlowSpec | None = None) -> FlowSpec | None:
    """The flow as Keycloak has it, in the same shape as a spec (None when it does not exist)."""
    flows = {f["alias"]: f for f in kc.flows()}
    if alias not in flows:
        return None
    flat = kc.flow_executions(alias)
    wanted = _config_shapes(spec.children if spec else ())
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
                config = None
                if ex.get("authenticationConfig"):
                    config = kc.execution_config(ex["authenticationConfig"]).get("config", {})
                provider = ex.get("providerId", "")
                out.append(Step(provider, ex["requirement"], _relevant(config, wanted.get(provider))))
        return tuple(out)

    return FlowSpec(alias, flows[alias].get("description", ""), build(0))


def _config_shapes(nodes: tuple[Node, ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for n in nodes:
        if isinstance(n, Sub):
            out.update(_config_shapes(n.children))
        elif n.config:
            out[n.provider] = n.config
    return out


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
                out.append(f"{where}: {w.provider} condition config is damaged or missing")
        elif w is not None and h is not None:
            out.append(f"{where}: step {i + 1} is {_name(h)}, expected {_name(w)}")


def _name(n: Node) -> str:
    return f"subflow {n.alias!r}" if isinstance(n, Sub) else repr(n.provider)


def build_flow(kc: KeycloakClient, spec: FlowSpec) -> None:
    """Create the flow from nothing. Keycloak adds each step DISABLED; we set its requirement
    right after, and the flow is bound only once complete (see setup)."""
    kc.create_flow(spec.alias, spec.description)
    _add(kc, spec.alias, spec.children, spec.alias)


def _add(kc: KeycloakClient, parent: str, nodes: tuple[Node, ...], top: str) -> None:
    for node in nodes:
        if isinstance(node, Sub):
            kc.add_subflow(parent, node.alias)
        else:
            kc.add_execution(parent, node.provider)
        created: JSON = [e for e in kc.flow_executions(parent) if e["level"] == 0][-1]
        kc.set_requirement(parent, created, node.requirement)
        if isinstance(node, Sub):
            _add(kc, node.alias, node.children, top)
        elif node.config:
            kc.add_execution_config(created["id"], f"{top} {node.provider}", dict(node.config))


def flow_id(kc: KeycloakClient, alias: str) -> str | None:
    for f in kc.flows():
        if f["alias"] == alias:
            return str(f["id"])
    return None
