"""The twostep-web client step of `twostep setup` (pure planning)."""

from __future__ import annotations

import pytest
from twostep.errors import InvalidInput
from twostep.setup_actions import Kind
from twostep.web_oidc_client import WEB_CLIENT_ID, WEB_SERVICE_ROLES, desired_rep, plan_steps


def test_missing_client_is_created_with_pkce_and_exact_redirects() -> None:
    steps = plan_steps("https://2fa.example.org/", None)
    assert len(steps) == 1 and steps[0].kind is Kind.CREATE_WEB_CLIENT and "create" in steps[0].text
    rep = desired_rep("https://2fa.example.org/")
    assert rep["clientId"] == WEB_CLIENT_ID and rep["publicClient"] is False
    assert rep["redirectUris"] == ["https://2fa.example.org/auth/callback"]
    assert rep["attributes"] == {"pkce.code.challenge.method": "S256",
                                 "post.logout.redirect.uris": "https://2fa.example.org/"}
    assert rep["directAccessGrantsEnabled"] is False and rep["implicitFlowEnabled"] is False


def test_matching_client_plans_nothing_and_drift_is_repaired() -> None:
    have = {**desired_rep("http://127.0.0.1:8000"), "id": "x", "name": "renamed by an admin",
            "attributes": {**desired_rep("http://127.0.0.1:8000")["attributes"], "other": "kept"}}
    exact = frozenset(WEB_SERVICE_ROLES)
    assert plan_steps("http://127.0.0.1:8000", have, exact) == []
    widened = {**have, "redirectUris": ["*"], "attributes": {"pkce.code.challenge.method": ""}}
    (step,) = plan_steps("http://127.0.0.1:8000", widened, exact)
    assert step.kind is Kind.UPDATE_WEB_CLIENT and "redirectUris" in step.text and "pkce" in step.text
    assert step.payload["id"] == "x" and step.payload["redirectUris"] == ["http://127.0.0.1:8000/auth/callback"]


def test_web_client_has_its_own_service_account_with_exactly_its_roles() -> None:
    rep = desired_rep("https://2fa.example.org")
    assert rep["serviceAccountsEnabled"] is True
    assert set(WEB_SERVICE_ROLES) == {"manage-users", "view-realm"}
    assert not {"manage-realm", "view-events"} & set(WEB_SERVICE_ROLES)
    (step,) = plan_steps("https://2fa.example.org", None)
    assert "manage-users, view-realm" in step.text
    have = {**rep, "id": "x"}
    (step,) = plan_steps("https://2fa.example.org", have, frozenset({"manage-users"}))
    assert "grant view-realm" in step.text and step.payload == {"grant": ("view-realm",), "remove": ()}
    (step,) = plan_steps("https://2fa.example.org", have,
                         frozenset({*WEB_SERVICE_ROLES, "manage-realm", "view-events"}))
    assert "remove manage-realm, view-events" in step.text
    assert step.payload == {"grant": (), "remove": ("manage-realm", "view-events")}
    # A client made by an older setup (no service account): enabled, then given its roles.
    old = {**have, "serviceAccountsEnabled": False}
    texts = [s.text for s in plan_steps("https://2fa.example.org", old, None)]
    assert len(texts) == 2 and "serviceAccountsEnabled" in texts[0] and "grant manage-users, view-realm" in texts[1]


@pytest.mark.parametrize("url", ["ftp://x", "example.org", "https://x/?a=1", ""])
def test_bad_web_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        plan_steps(url, None)
