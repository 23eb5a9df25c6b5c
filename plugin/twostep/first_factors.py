"""First factors that sign in on their own (Kerberos, X.509, custom steps): when one succeeds, the
second-factor branch beside it never runs. `status` and `doctor` name each enabled one with its fix
(docs/architecture.md, "Doors")."""

from __future__ import annotations

from .flows import FlowSpec, Node, Sub
from .policy import CONDITION_PROVIDER

# First factors that sign in on their own when they succeed (the second-factor subflow beside them
# then never runs): status names each enabled one with its fix. The cookie is a session that already
# passed; the IdP redirector leads to a brokered login, which the post-broker-login flow decides.
SAFE_ALTERNATIVES = frozenset({"auth-cookie", "identity-provider-redirector"})



def skipping_first_factors(spec: FlowSpec) -> list[tuple[str, str]]:
    """(step, where) of every enabled step that signs in without the second factor: an ALTERNATIVE
    beside a branch that holds the twostep condition, other than the cookie and the IdP redirector."""
    out: list[tuple[str, str]] = []

    def holds_condition(n: Node) -> bool:
        if isinstance(n, Sub):
            return any(holds_condition(c) for c in n.children)
        return n.provider == CONDITION_PROVIDER or n.provider == "conditional-user-attribute"

    def walk(nodes: tuple[Node, ...], where: str) -> None:
        guarded = any(isinstance(n, Sub) and holds_condition(n) for n in nodes
                      if n.requirement in ("ALTERNATIVE", "REQUIRED"))
        for n in nodes:
            if isinstance(n, Sub):
                walk(n.children, n.alias)
            elif guarded and n.requirement == "ALTERNATIVE" and n.provider not in SAFE_ALTERNATIVES:
                out.append((n.provider, where))

    walk(spec.children, spec.alias)
    return out
