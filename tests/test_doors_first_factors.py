"""First factors that sign in on their own (Kerberos, X.509, ...): the second factor never runs after
them. Setup decides Kerberos explicitly (`--kerberos`); status and doctor name every other one."""

from __future__ import annotations

import json
from urllib.parse import quote

from twostep import flow_adapt, flows
from twostep.first_factors import skipping_first_factors
from twostep.flows import FlowSpec, Step, Sub

from tests.conftest import Admin, Twostep

BROWSER = FlowSpec("corp browser", "", (
    Step("auth-cookie", "ALTERNATIVE"),
    Step("auth-spnego", "ALTERNATIVE"),
    Step("auth-x509-client-username-form", "ALTERNATIVE"),
    Step("identity-provider-redirector", "ALTERNATIVE"),
    Sub("forms", "ALTERNATIVE", (
        Step("auth-username-password-form", "REQUIRED"),
        Sub("Conditional OTP", "CONDITIONAL", (Step("conditional-user-configured", "REQUIRED"),
                                               Step("auth-otp-form", "ALTERNATIVE"))),
    )),
))


def test_kerberos_alone_is_disabled_in_the_copy_unless_trusted() -> None:
    cond = flows.provider_condition()
    strict = flow_adapt.adapt(BROWSER, "twostep browser", cond)
    assert strict.children[1] == Step("auth-spnego", "DISABLED")
    assert "--kerberos second-factor" in strict.children[1].note
    assert skipping_first_factors(strict) == [("auth-x509-client-username-form", "twostep browser")]
    trusting = flow_adapt.adapt(BROWSER, "twostep browser", cond, kerberos="trusted")
    assert trusting.children[1] == Step("auth-spnego", "ALTERNATIVE")
    assert skipping_first_factors(trusting) == [("auth-spnego", "twostep browser"),
                                                      ("auth-x509-client-username-form", "twostep browser")]
    assert skipping_first_factors(BROWSER) == [], "no twostep condition: nothing is guarded to skip"


def _set(admin: Admin, realm: str, flow: str, provider: str, requirement: str) -> None:
    ex = next(e for e in admin.get(f"/{realm}/authentication/flows/{quote(flow)}/executions")
              if e.get("providerId") == provider)
    admin.put(f"/{realm}/authentication/flows/{quote(flow)}/executions", {**ex, "requirement": requirement})


def test_status_and_doctor_name_what_skips_the_second_factor(twostep: Twostep, admin: Admin, realm: str) -> None:
    admin.post(f"/{realm}/authentication/flows/browser/copy", {"newName": "corp browser"})
    _set(admin, realm, "corp browser", "auth-spnego", "ALTERNATIVE")
    admin.put(f"/{realm}", {"browserFlow": "corp browser"})
    args = ("setup", "--no-service-client", "--enforce", "all")
    r = twostep(*args, "--dry-run")
    assert "auth-spnego  DISABLED  <- ALTERNATIVE -> DISABLED (--kerberos second-factor)" in r.out, r.out
    assert twostep(*args).code == 0
    spnego = [e for e in admin.get(f"/{realm}/authentication/flows/{quote('twostep browser')}/executions")
              if e.get("providerId") == "auth-spnego"]
    assert spnego[0]["requirement"] == "DISABLED"
    assert twostep("status").code == 0

    assert twostep(*args, "--kerberos", "trusted").code == 0
    st = twostep("status", "--json")
    checks = {c["name"]: c for c in json.loads(st.out)["checks"]}
    kerberos = checks["first factor 'auth-spnego' in 'twostep browser'"]
    assert kerberos["ok"] and "trusted" in kerberos["detail"]
    assert json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])["kerberos"] == "trusted"

    # X.509 added to the realm's own flow as an alternative: named with its fix by status and doctor.
    admin.post(f"/{realm}/authentication/flows/{quote('corp browser')}/executions/execution",
               {"provider": "auth-x509-client-username-form"})
    _set(admin, realm, "corp browser", "auth-x509-client-username-form", "ALTERNATIVE")
    assert twostep(*args).code == 0, "the changed source is adapted again"
    for cmd in ("status", "doctor"):
        out = twostep(cmd, "--json")
        assert out.code == 1, out.out
        bad = {c["name"]: c for c in json.loads(out.out)["checks"] if not c["ok"]}
        x509 = bad["first factor 'auth-x509-client-username-form' in 'twostep browser'"]
        assert "DISABLED" in x509["fix"], x509
