"""The adapter's translation of Keycloak's answers into errors by meaning (unit, `responses`)."""

from __future__ import annotations

import pytest
import requests
import responses
from twostep.errors import BadRequest, Conflict, Forbidden, KeycloakUnavailable, NotFound, Unauthorized
from twostep.keycloak_adapter import KeycloakClient
from twostep.settings import load_settings

URL = "http://kc.test"
TOKEN = f"{URL}/realms/acme/protocol/openid-connect/token"


def client() -> KeycloakClient:
    s = load_settings(env={"TWOSTEP_URL": URL, "TWOSTEP_CLIENT_ID": "twostep-cli", "TWOSTEP_CLIENT_SECRET": "s"},
                      realm="acme")
    return KeycloakClient(s)


def _token() -> None:
    responses.add(responses.POST, TOKEN, json={"access_token": "a", "expires_in": 300, "refresh_token": "r",
                                               "refresh_expires_in": 1800, "token_type": "Bearer"})


@responses.activate
@pytest.mark.parametrize(("status", "error", "text"), [
    (403, Forbidden, "not allowed"),
    (409, Conflict, "conflict (User exists with same username)"),
    (400, BadRequest, "refused the request, HTTP 400 (User exists with same username)"),
    (500, KeycloakUnavailable, "HTTP 500"),
])
def test_status_codes_become_errors_by_meaning(status: int, error: type[Exception], text: str) -> None:
    _token()
    responses.add(responses.POST, f"{URL}/admin/realms/acme/users", status=status,
                  json={"errorMessage": "User exists with same username"})
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        client().post("/users", {"username": "x"}, "create user")


@responses.activate
def test_not_found_on_a_user_vs_missing_realm() -> None:
    _token()
    responses.add(responses.GET, f"{URL}/admin/realms/acme/users/u1", status=404, json={"error": "User not found"})
    responses.add(responses.GET, f"{URL}/admin/realms/acme", json={"realm": "acme"})
    with pytest.raises(NotFound, match="user 'u1': not found"):
        client().get_user("u1")


@responses.activate
def test_missing_realm_is_named() -> None:
    _token()
    responses.add(responses.GET, f"{URL}/admin/realms/acme/users/u1", status=404)
    responses.add(responses.GET, f"{URL}/admin/realms/acme", status=404)
    with pytest.raises(NotFound, match="realm 'acme' does not exist"):
        client().get_user("u1")


@responses.activate
def test_rejected_client_credentials() -> None:
    responses.add(responses.POST, TOKEN, status=401, json={"error": "unauthorized_client"})
    with pytest.raises(Unauthorized, match=r"rejected the credentials of service account 'twostep-cli'"):
        client().get_realm()


@responses.activate
def test_token_endpoint_of_missing_realm() -> None:
    responses.add(responses.POST, TOKEN, status=404, json={"error": "Realm does not exist"})
    with pytest.raises(NotFound, match="realm 'acme' does not exist"):
        client().get_realm()


@responses.activate
def test_connection_refused_is_unavailable() -> None:
    responses.add(responses.POST, TOKEN, body=requests.ConnectionError("refused"))
    with pytest.raises(KeycloakUnavailable, match=r"cannot reach Keycloak at http://kc\.test"):
        client().get_realm()


@responses.activate
def test_idempotent_reads_are_retried_on_503_but_posts_are_not() -> None:
    _token()
    get_url = f"{URL}/admin/realms/acme/users/count"
    responses.add(responses.GET, get_url, status=503)
    responses.add(responses.GET, get_url, json=7)
    kc = client()
    assert kc.count_users() == 7
    post_url = f"{URL}/admin/realms/acme/users"
    responses.add(responses.POST, post_url, status=503)
    responses.add(responses.POST, post_url, status=201, headers={"Location": f"{post_url}/new"})
    with pytest.raises(KeycloakUnavailable):
        kc.post("/users", {"username": "x"}, "create user")
    assert len([c for c in responses.calls if c.request.method == "POST" and c.request.url == post_url]) == 1


@responses.activate
def test_calls_are_counted() -> None:
    _token()
    responses.add(responses.GET, f"{URL}/admin/realms/acme", json={"realm": "acme"})
    kc = client()
    kc.get_realm()
    kc.get_realm()
    assert kc.calls.count == 3  # one token, two reads


@responses.activate
def test_expired_personal_token_is_unauthorized() -> None:
    """The web pages act with the signed-in person's token; when Keycloak rejects it, the page must
    learn 'sign in again', not crash."""
    s = load_settings(env={"TWOSTEP_URL": URL}, realm="acme")
    kc = KeycloakClient(s, token="expired-token")
    responses.add(responses.GET, f"{URL}/admin/realms/acme/users/count", status=401, json={"error": "HTTP 401"})
    with pytest.raises(Unauthorized, match=r"count users: the sign-in to Keycloak is no longer valid; sign in again"):
        kc.count_users()


@responses.activate
def test_a_token_near_its_end_is_fetched_anew_before_the_request() -> None:
    for _ in range(2):
        responses.add(responses.POST, TOKEN, json={"access_token": "short", "expires_in": 10, "token_type": "Bearer"})
    responses.add(responses.GET, f"{URL}/admin/realms/acme", json={"realm": "acme"})
    kc = client()
    kc.get_realm()
    kc.get_realm()
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "POST", "GET"]


@responses.activate
def test_a_refused_token_is_fetched_anew_once_and_the_request_sent_again() -> None:
    _token()
    _token()
    url = f"{URL}/admin/realms/acme/users"
    responses.add(responses.POST, url, status=401, json={"error": "HTTP 401 Unauthorized"})
    responses.add(responses.POST, url, status=201, headers={"Location": f"{url}/new"})
    assert client().create_user({"username": "x"}) == "new"
    assert [c.request.method for c in responses.calls] == ["POST", "POST", "POST", "POST"]
    assert [c.request.url for c in responses.calls] == [TOKEN, url, TOKEN, url]
