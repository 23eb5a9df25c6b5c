"""Client flow overrides are doors of their own: setup adapts the flow an override names (one copy
per distinct source), binds the override to it, and teardown binds back exactly. Real logins and
token requests through the overriding clients."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.login import REDIRECT_URI, LoginDriver
from tests.support.twofactor import finish_sign_in
from tests.test_doors_direct_grant import grant, wrong_credentials


def setup(twostep: Twostep, *extra: str) -> Any:
    return twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0", *extra)


def flow_id(admin: Admin, realm: str, alias: str) -> str:
    return str(next(f["id"] for f in admin.get(f"/{realm}/authentication/flows") if f["alias"] == alias))


def override_client(admin: Admin, realm: str, kind: str, flow_alias: str) -> tuple[str, dict[str, str]]:
    """A public client whose `kind` override names `flow_alias`; (its uuid, its token-endpoint fields)."""
    client_id = f"ov-{kind}-" + uuid.uuid4().hex[:6]
    r = admin.post(f"/{realm}/clients", {
        "clientId": client_id, "publicClient": True, "standardFlowEnabled": True, "directAccessGrantsEnabled": True,
        "redirectUris": [REDIRECT_URI], "webOrigins": ["+"],
        "authenticationFlowBindingOverrides": {kind: flow_id(admin, realm, flow_alias)}})
    return r.headers["Location"].rsplit("/", 1)[-1], {"client_id": client_id}


def overrides(admin: Admin, realm: str, uuid_: str) -> dict[str, str]:
    got: dict[str, str] = admin.get(f"/{realm}/clients/{uuid_}")["authenticationFlowBindingOverrides"]
    return got


def test_overrides_are_adapted_reported_and_bound_back(
        twostep: Twostep, make_user: MakeUser, keycloak: Keycloak, admin: Admin, realm: str) -> None:
    assert setup(twostep).code == 0
    # Doors added after setup: a browser override to the untouched stock `browser` flow, and a
    # direct-grant override to a flow of its own.
    admin.post(f"/{realm}/authentication/flows/{quote('direct grant')}/copy", {"newName": "legacy grant"})
    web_uuid, _web = override_client(admin, realm, "browser", "browser")
    api_uuid, api = override_client(admin, realm, "direct_grant", "legacy grant")
    before = {web_uuid: overrides(admin, realm, web_uuid), api_uuid: overrides(admin, realm, api_uuid)}

    st = twostep("status", "--json")
    assert st.code == 1, st.out
    failing = {c["name"] for c in json.loads(st.out)["checks"] if not c["ok"]}
    assert any(n.endswith("browser override") for n in failing), failing
    assert any(n.endswith("direct_grant override") for n in failing), failing

    new = make_user("newbie")
    assert grant(keycloak, realm, api, new).status_code == 200, "before: the password alone (the door is open)"

    dry = twostep("setup", "--no-service-client", "--enforce", "all", "--grace-days", "0", "--dry-run", "--json")
    planned = json.loads(dry.out)["changes"]
    assert any("twostep client direct grant legacy grant" in c for c in planned), planned
    assert overrides(admin, realm, api_uuid) == before[api_uuid], "--dry-run changes nothing"

    assert setup(twostep).code == 0
    again = setup(twostep, "--json")
    assert again.code == 0 and json.loads(again.out)["changes"] == [], again.out
    assert overrides(admin, realm, web_uuid)["browser"] == flow_id(admin, realm, "twostep browser")
    copy = "twostep client direct grant legacy grant"
    assert overrides(admin, realm, api_uuid)["direct_grant"] == flow_id(admin, realm, copy)
    assert twostep("status").code == 0
    record = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert record["client_overrides"] == {admin.get(f"/{realm}/clients/{web_uuid}")["clientId"]: {"browser": "browser"},
                                          api["client_id"]: {"direct_grant": "legacy grant"}}

    # The browser override: enroll, code, bypass.
    web_client = admin.get(f"/{realm}/clients/{web_uuid}")["clientId"]
    assert LoginDriver(keycloak.url, realm, web_client).login(new.username, new.password).kind == "configure-totp"
    enrolled = make_user("enrolled", otp=True)
    b = LoginDriver(keycloak.url, realm, web_client)
    assert b.login(enrolled.username, enrolled.password).kind == "otp"
    b.submit({"otp": enrolled.code()})
    finish_sign_in(b, admin, realm)
    lost = make_user("lostphone", otp=True)
    assert twostep("bypass", "grant", "lostphone", "--for", "1h", "--reason", "lost phone, ticket 4711",
                   "--password").code == 0
    b = LoginDriver(keycloak.url, realm, web_client)
    b.login(lost.username, lost.password)
    assert b.logged_in(), "a bypass is the password alone through the override too"

    # The direct-grant override: refused, code, bypass.
    r = grant(keycloak, realm, api, new)
    assert r.status_code == 400 and r.json()["error_description"] == "Account is not fully set up", r.text
    other = make_user("other", otp=True)
    assert wrong_credentials(grant(keycloak, realm, api, other))
    # (not `enrolled`: its current code was just used in the browser, and a code is not reusable)
    assert grant(keycloak, realm, api, other, code=other.code()).status_code == 200
    assert grant(keycloak, realm, api, lost).status_code == 200

    assert twostep("teardown").code == 0
    assert {web_uuid: overrides(admin, realm, web_uuid), api_uuid: overrides(admin, realm, api_uuid)} == before
    aliases = {f["alias"] for f in admin.get(f"/{realm}/authentication/flows")}
    assert not {a for a in aliases if a.startswith("twostep")}, aliases


def test_an_unguardable_override_is_refused_naming_the_client(
        twostep: Twostep, admin: Admin, realm: str) -> None:
    admin.post(f"/{realm}/authentication/flows", {"alias": "bare grant", "providerId": "basic-flow",
                                                  "topLevel": True, "builtIn": False})
    for provider in ("direct-grant-validate-username", "direct-grant-validate-password", "direct-grant-validate-otp"):
        admin.post(f"/{realm}/authentication/flows/{quote('bare grant')}/executions/execution", {"provider": provider})
    for ex in admin.get(f"/{realm}/authentication/flows/{quote('bare grant')}/executions"):
        admin.put(f"/{realm}/authentication/flows/{quote('bare grant')}/executions", {**ex, "requirement": "REQUIRED"})
    uuid_, api = override_client(admin, realm, "direct_grant", "bare grant")
    before_realm = admin.get(f"/{realm}")
    r = setup(twostep)
    assert r.code != 0 and "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twostep: error:") and api["client_id"] in lines[0], r.err
    assert admin.get(f"/{realm}")["browserFlow"] == before_realm["browserFlow"] == "browser", "nothing changed"
    assert overrides(admin, realm, uuid_)["direct_grant"] == flow_id(admin, realm, "bare grant")
