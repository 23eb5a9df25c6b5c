"""Help requests, safer (issue 24 item 5), by real logins on a real Keycloak with the provider JAR:
the owner of the account is e-mailed at once in their language; per-user and per-address limits
(Keycloak's single-use-object store) besides the realm-wide one; a request expires after
`help_expiry_days` (docs/formats.md, "Help requests").

Source addresses are real: Keycloak listens on 127.0.0.1 and a driver can connect from another
loopback address (127.0.0.2, ...), so no proxy header is needed (the harness trusts none)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from requests.adapters import HTTPAdapter
from twostep import help_requests
from twostep.audit import MemorySink
from twostep.clock import fixed_clock
from twostep.lock import lease_seconds
from twostep.sync.reconcile import Options, run_once

from tests.conftest import Admin, Keycloak, User
from tests.support.bypass_helpers import client
from tests.support.help_helpers import file_request, in_index, stored_request
from tests.support.login import LoginDriver
from tests.support.smtp_sink import SmtpSink
from tests.test_help_request_login import ask, mode, requests_of, setup, to_help_form


class _FromAddress(HTTPAdapter):
    """Connect from this local address (a second "client" on the same machine)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def driver_from(keycloak: Keycloak, realm: str, source: str) -> LoginDriver:
    b = LoginDriver(keycloak.url, realm)
    b.s.mount("http://", _FromAddress(source))
    return b


def file_from(keycloak: Keycloak, realm: str, user: User, source: str = "127.0.0.1") -> str:
    """Password, "try another way", "ask an administrator", send: the page's mode."""
    return mode(ask(driver_from(keycloak, realm, source), user, f"help for {user.username}"))


@pytest.fixture
def mail(admin: Admin, realm: str) -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        admin.put(f"/{realm}", {"smtpServer": sink.realm_settings()})
        yield sink


def test_owner_is_emailed_at_once_in_their_language(twostep: Any, make_user: Any, keycloak: Keycloak,
                                                    admin: Admin, realm: str, mail: SmtpSink) -> None:
    setup(twostep)
    admin.put(f"/{realm}", {"realm": realm, "internationalizationEnabled": True,
                            "supportedLocales": ["en", "de", "ru"], "defaultLocale": "en"})
    bob = make_user("bob", otp=True, email="bob@example.test")
    rep = admin.get(f"/{realm}/users/{bob.id}")
    rep["attributes"] = {**(rep.get("attributes") or {}), "locale": ["de"]}
    admin.put(f"/{realm}/users/{bob.id}", rep)
    eve = make_user("eve", otp=True, email="eve@example.test")

    b = driver_from(keycloak, realm, "127.0.0.1")
    page = to_help_form(b, bob, "einen Administrator fragen")
    page = b.submit({"message": "Telefon weg"}, form_field="message")
    assert mode(page) == "sent", page.summary()

    (msg,) = mail.wait_for("bob@example.test")
    body = SmtpSink.body(msg)
    assert "Jemand hat Zugang zu Ihrem Konto" in str(msg["Subject"]), msg["Subject"]
    assert "Jemand, der Ihr Passwort kennt" in body and "Ändern Sie es sofort" in body, body
    assert "127.0.0.1" in body, "the address the request came from"
    assert "Telefon weg" not in body, "the requester's words are not repeated to the owner"
    asked = (stored_request(admin, realm, bob.id) or {})["asked_at"]
    assert f"{asked[8:10]}.{asked[5:7]}.{asked[0:4]}" in body, (asked, body)

    # English for a user without a locale; only the owner is written to.
    assert file_from(keycloak, realm, eve) == "sent"
    (msg,) = mail.wait_for("eve@example.test")
    assert "Someone asked for access to your" in str(msg["Subject"])
    assert "If it was not you, someone else knows your password: change it now" in SmtpSink.body(msg)
    assert sorted(str(m["To"]) for m in mail.messages) == ["bob@example.test", "eve@example.test"]


def test_mail_failure_never_blocks_the_request(twostep: Any, make_user: Any, keycloak: Keycloak, admin: Admin,
                                               realm: str) -> None:
    setup(twostep)
    with SmtpSink() as sink:
        settings = sink.realm_settings()
    admin.put(f"/{realm}", {"smtpServer": settings})  # the sink is stopped: connection refused
    carol = make_user("carol", otp=True)
    assert file_from(keycloak, realm, carol) == "sent"
    assert len(requests_of(admin, realm, carol.id)) == 1 and in_index(admin, realm, carol.id)


def _dismiss(twostep: Any, user: User) -> None:
    r = twostep("help", "dismiss", user.username, "--reason", "test: not you")
    assert r.code == 0, r.err + r.out


def test_per_user_limit_holds_while_other_users_can_file(twostep: Any, make_user: Any, keycloak: Keycloak,
                                                         admin: Admin, realm: str) -> None:
    setup(twostep, "--help-user-rate", "2", "--help-address-rate", "0")
    policy = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert policy["help_max_per_user_day"] == 2 and policy["help_max_per_address_hour"] == 0
    alice, bob = make_user("alice", otp=True), make_user("bob", otp=True)

    assert file_from(keycloak, realm, alice) == "sent"
    _dismiss(twostep, alice)
    assert file_from(keycloak, realm, alice) == "sent"
    _dismiss(twostep, alice)
    # The third of the day is refused (nothing stored), from any address.
    assert file_from(keycloak, realm, alice) == "limited"
    assert file_from(keycloak, realm, alice, "127.0.0.9") == "limited"
    assert requests_of(admin, realm, alice.id) == [] and not in_index(admin, realm, alice.id)
    # Another user, same address, same minute: still taken.
    assert file_from(keycloak, realm, bob) == "sent"
    assert len(requests_of(admin, realm, bob.id)) == 1

    # setup again without the flags keeps them.
    setup(twostep)
    policy = json.loads(admin.get(f"/{realm}")["attributes"]["twostep.policy"])
    assert policy["help_max_per_user_day"] == 2 and policy["help_max_per_address_hour"] == 0


def test_per_address_limit_leaves_other_addresses_free(twostep: Any, make_user: Any, keycloak: Keycloak,
                                                       admin: Admin, realm: str) -> None:
    setup(twostep, "--help-address-rate", "2")
    users = [make_user(f"user{i}", otp=True) for i in range(5)]
    # Two stolen passwords from one address are taken, the third is refused ...
    assert [file_from(keycloak, realm, u, "127.0.0.2") for u in users[:3]] == ["sent", "sent", "limited"]
    assert requests_of(admin, realm, users[2].id) == []
    # ... while other users from other addresses still file, and the refused user from elsewhere too.
    assert file_from(keycloak, realm, users[3], "127.0.0.3") == "sent"
    assert file_from(keycloak, realm, users[2], "127.0.0.4") == "sent"
    assert file_from(keycloak, realm, users[4], "127.0.0.2") == "limited"
    filed = sorted(u.username for u in users if requests_of(admin, realm, u.id))
    assert filed == ["user0", "user1", "user2", "user3"]


def test_expired_request_no_longer_blocks_and_leaves_the_queue(twostep: Any, make_user: Any, keycloak: Keycloak,
                                                              admin: Admin, realm: str) -> None:
    setup(twostep, "--help-expiry", "3")
    now = datetime.now(UTC).replace(microsecond=0)
    dora, finn = make_user("dora", otp=True), make_user("finn", otp=True)

    # Filed 3 days and a minute ago (as the provider stores it): expired for the provider, whose
    # clock is Keycloak's, so dora's new request is taken and replaces it.
    file_request(admin, realm, dora.id, "old", asked_at=now - timedelta(days=3, minutes=1))
    assert file_from(keycloak, realm, dora) == "sent"
    (cred,) = requests_of(admin, realm, dora.id)
    data = json.loads(cred["credentialData"])
    assert data["message"] == "help for dora"
    assert abs((datetime.strptime(data["asked_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - now)
               .total_seconds()) < 120

    # A real request of finn, now: in the queue until 3 days have passed on the admins' clock.
    assert file_from(keycloak, realm, finn) == "sent"
    kc = client(keycloak.url, realm)
    shown = [r["username"] for r in help_requests.queue(kc, fixed_clock(now))]
    assert sorted(shown) == ["dora", "finn"]
    later = now + timedelta(days=3, minutes=5)
    assert help_requests.queue(kc, fixed_clock(later)) == []

    # Sync with the clock moved on closes both (each through the provider's dismiss), audited.
    sink = MemorySink([])
    summary, _ = run_once(kc, later, sink, "sync: test", lease_seconds(kc.settings), Options(enforce=False))
    assert not summary.errors, summary.errors
    assert requests_of(admin, realm, finn.id) == [] and not in_index(admin, realm, finn.id)
    assert requests_of(admin, realm, dora.id) == [] and not in_index(admin, realm, dora.id)
    expired = sorted(e["username"] for e in sink.events if e["event"] == "help.expire")
    assert expired == ["dora", "finn"]
    # And finn can file again at once (nothing open).
    assert file_from(keycloak, realm, finn) == "sent"


def test_limits_in_the_policy_record_are_read_as_the_provider_reads_them() -> None:
    from twostep.policy import RealmPolicy

    base = json.loads(RealmPolicy().to_json())
    assert not {"help_max_per_user_day", "help_max_per_address_hour", "help_expiry_days"} & set(base), \
        "defaults are not written: records written before stay byte-identical"
    set_ = RealmPolicy(help_max_per_user_day=1, help_max_per_address_hour=0, help_expiry_days=30)
    back = RealmPolicy.from_json(set_.to_json())
    assert back is not None
    assert (back.help_max_per_user_day, back.help_max_per_address_hour, back.help_expiry_days) == (1, 0, 30)
    # Out of range or not an integer: the default (as HelpRequestLimits.fromPolicy), the record still readable.
    for bad in (-1, "2", 1.5, True, None, 100_001):
        text = json.dumps({**base, "help_max_per_user_day": bad, "help_max_per_address_hour": bad,
                           "help_expiry_days": 0 if bad is None else bad})
        read = RealmPolicy.from_json(text)
        assert read is not None, bad
        assert (read.help_max_per_user_day, read.help_max_per_address_hour, read.help_expiry_days) == (3, 5, 7), bad
