"""Adapting a realm's own login flow: the pure part of `flows` (no Keycloak calls).

`adapt` takes the flow as read (`flows.read_flow`) and returns the copy setup builds
(`flows.build_adapted`): the twostep condition first in each second-factor conditional subflow, or
a second-factor subflow added after the password step where the flow has none; backup codes and
the help-request step offered beside the other second factors; Kerberos alone disabled unless
trusted. A shape no condition could guard raises `flows.CannotAdapt`.
"""

from __future__ import annotations

from dataclasses import replace

from .flows import (
    ADDED,
    DIRECT_GRANT_PASSWORD,
    HELP_PROVIDER,
    KERBEROS,
    PASS_PROVIDER,
    PASSWORD_STEPS,
    RECOVERY_FORM,
    RESET_ANCHOR,
    SECOND_FACTOR_STEPS,
    CannotAdapt,
    FlowSpec,
    Node,
    Step,
    Sub,
    access_pass_step,
    second_factor_subflow,
)
from .policy import CONDITION_PROVIDER


def adapt(source: FlowSpec, alias: str, condition: Step, *, reset: bool = False, backup_codes: str = "required",
          webauthn: bool = False, help: Step | None = None, direct_grant: bool = False,
          kerberos: str = "second-factor") -> FlowSpec:
    """The realm's flow plus the twostep condition, as the copy `POST .../flows/{source}/copy` makes
    it (every subflow renamed `"<alias> <subflow>"`). Raises CannotAdapt on a shape where a second
    factor would run with no conditional subflow around it (no condition could skip it for a bypass).
    `help` (provider mode, browser flow): the help-request step, appended as the last alternative.
    `direct_grant`: a password grant's flow (no forms: no backup-code form, no help step; an added
    subflow checks the OTP parameter after direct-grant-validate-password). With the provider's
    condition every flow but a password grant's also offers the access pass (`access_pass_step`)."""
    _check_guardable(source.children, source.alias, [])
    codes = backup_codes != "off" and not direct_grant
    help = None if direct_grant else help
    targets = _targets(source.children)
    if targets:
        children = _insert(source.children, alias, condition, targets, codes, help, direct_grant)
    else:
        children = _add_subflow(source, alias, condition, reset=reset, webauthn=webauthn, codes=codes, help=help,
                                direct_grant=direct_grant)
    if kerberos != "trusted":
        children = _no_kerberos_alone(children)
    return FlowSpec(alias, source.description, children)


def _no_kerberos_alone(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    """`--kerberos second-factor`: a Kerberos ticket alone must not sign in, and no condition can
    put a second factor after an ALTERNATIVE step: the adapted copy has it DISABLED (shown in the
    plan); the realm's own flow keeps it."""
    out: list[Node] = []
    for n in nodes:
        if isinstance(n, Sub):
            out.append(replace(n, children=_no_kerberos_alone(n.children)))
        elif n.provider == KERBEROS and n.requirement != "DISABLED":
            out.append(replace(n, requirement="DISABLED",
                               note=f"{n.requirement} -> DISABLED (--kerberos second-factor)"))
        else:
            out.append(n)
    return tuple(out)


def _check_guardable(nodes: tuple[Node, ...], where: str, ancestors: list[Sub]) -> None:
    for n in nodes:
        if n.requirement == "DISABLED":
            continue  # never runs, whatever it holds
        if isinstance(n, Sub):
            _check_guardable(n.children, n.alias, [*ancestors, n])
        elif n.provider in SECOND_FACTOR_STEPS and not any(a.requirement == "CONDITIONAL" for a in ancestors):
            place = "at the top level" if not ancestors else f"in subflow {where!r}, which is not conditional"
            raise CannotAdapt(
                f"cannot adapt flow: step {n.provider!r} is {n.requirement} {place}; no condition can guard "
                "it, so a bypass could never skip it. Put it into a CONDITIONAL subflow (as Keycloak's own "
                "browser flow does), then run setup again")


def _targets(nodes: tuple[Node, ...], nearest: str | None = None) -> set[str]:
    """Aliases of the conditional subflows nearest around each second-factor step."""
    out: set[str] = set()
    for n in nodes:
        if isinstance(n, Sub):
            out |= _targets(n.children, n.alias if n.requirement == "CONDITIONAL" else nearest)
        elif n.provider in SECOND_FACTOR_STEPS and nearest is not None:
            out.add(nearest)
    return out


def _insert(nodes: tuple[Node, ...], alias: str, condition: Step, targets: set[str], codes: bool,
            help: Step | None = None, no_pass: bool = False) -> tuple[Node, ...]:
    out: list[Node] = []
    for n in nodes:
        if not isinstance(n, Sub):
            out.append(n)
            continue
        children = _insert(n.children, alias, condition, targets, codes, help, no_pass)
        if n.alias in targets:
            if condition not in children:
                children = (condition, *children)
            if codes:
                children = _offer_codes(children)
            if condition.provider == CONDITION_PROVIDER and not no_pass:
                children = _offer_pass(children)
            if help is not None:
                children = _offer_help(children, help)
        out.append(Sub(f"{alias} {n.alias}", n.requirement, children))
    return tuple(out)


def _offer_codes(children: tuple[Node, ...]) -> tuple[Node, ...]:
    """Backup codes on: the recovery-code form must be usable where the other second factors are
    offered as alternatives (Keycloak's own flow has it, DISABLED)."""
    factors = [c for c in children if isinstance(c, Step) and c.provider in SECOND_FACTOR_STEPS]
    if any(c.requirement == "REQUIRED" for c in factors):
        return children  # alternatives beside a REQUIRED step are ignored by Keycloak: leave it be
    out: list[Node] = []
    found = False
    for c in children:
        if isinstance(c, Step) and c.provider == RECOVERY_FORM:
            found = True
            if c.requirement == "DISABLED":
                c = replace(c, requirement="ALTERNATIVE", note="DISABLED -> ALTERNATIVE (backup codes on)")
        out.append(c)
    if not found:
        out.append(Step(RECOVERY_FORM, "ALTERNATIVE", None, ADDED))
    return tuple(out)


def _offer_pass(children: tuple[Node, ...]) -> tuple[Node, ...]:
    """The access-pass step after the realm's own second factors (Keycloak offers the user's own
    credentials first) where they are alternatives; beside a REQUIRED factor Keycloak would ignore it."""
    factors = [c for c in children if isinstance(c, Step) and c.provider in SECOND_FACTOR_STEPS]
    if any(c.requirement == "REQUIRED" for c in factors) or not factors:
        return children
    if any(isinstance(c, Step) and c.provider == PASS_PROVIDER for c in children):
        return children
    return (*children, access_pass_step())


def _offer_help(children: tuple[Node, ...], help: Step) -> tuple[Node, ...]:
    """The help-request step last, where the second factors are alternatives: Keycloak lists it in
    "Try another way" after the user's own credentials, so it is never the default choice. Beside a
    REQUIRED factor Keycloak would ignore it; a step the realm already has is left as it is."""
    factors = [c for c in children if isinstance(c, Step) and c.provider in SECOND_FACTOR_STEPS]
    if any(c.requirement == "REQUIRED" for c in factors) or not factors:
        return children
    if any(isinstance(c, Step) and c.provider == HELP_PROVIDER for c in children):
        return children
    return (*children, help)


def _add_subflow(source: FlowSpec, alias: str, condition: Step, *, reset: bool, webauthn: bool,
                 codes: bool, help: Step | None = None, direct_grant: bool = False) -> tuple[Node, ...]:
    anchors = (RESET_ANCHOR,) if reset else DIRECT_GRANT_PASSWORD if direct_grant else PASSWORD_STEPS
    # Subflow aliases are unique in a realm: never reuse a name the copy already gives a subflow.
    taken = {f"{alias} {name}" for name in _sub_aliases(source.children)}
    name = f"{alias} second factor"
    while name in taken:
        name += " (twostep)"
    new = second_factor_subflow(name, condition, webauthn=webauthn, codes=codes, help=help, direct_grant=direct_grant)
    done = False

    def walk(nodes: tuple[Node, ...], where: str) -> tuple[Node, ...]:
        nonlocal done
        out: list[Node] = []
        for n in nodes:
            if isinstance(n, Sub):
                out.append(Sub(f"{alias} {n.alias}", n.requirement, walk(n.children, n.alias)))
                continue
            out.append(n)
            if not done and n.provider in anchors and n.requirement != "DISABLED":
                if n.requirement != "REQUIRED":
                    raise CannotAdapt(
                        f"cannot adapt flow: step {n.provider!r} is {n.requirement} in {where!r}; a second-factor "
                        "subflow beside it would make Keycloak ignore its alternatives. Make it REQUIRED inside "
                        "its own subflow, then run setup again")
                out.append(new)
                done = True
        return tuple(out)

    children = walk(source.children, source.alias)
    if not done:
        what = RESET_ANCHOR if reset else " or ".join(DIRECT_GRANT_PASSWORD if direct_grant else PASSWORD_STEPS)
        raise CannotAdapt(f"cannot adapt flow {source.alias!r}: it has no second-factor subflow and no enabled "
                          f"{what} step to put one after")
    return children


def _sub_aliases(nodes: tuple[Node, ...]) -> set[str]:
    out: set[str] = set()
    for n in nodes:
        if isinstance(n, Sub):
            out |= {n.alias} | _sub_aliases(n.children)
    return out
