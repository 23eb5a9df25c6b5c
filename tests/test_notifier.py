"""The bypass grant tells the user through a Notifier (unit, no Keycloak, no SMTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from twostep import bypass, notify
from twostep.audit import MemorySink
from twostep.errors import KeycloakUnavailable
from twostep.keycloak_adapter import KeycloakClient

from tests.support.notifier import FakeNotifier

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KC = cast(KeycloakClient, None)  # the fake never reaches Keycloak
USER = {"id": "u1", "username": "hana", "email": "hana@example.test"}


def _grant(notifier: notify.Notifier) -> str:
    actor: Any = SimpleNamespace(name="ops")
    return bypass.notify_on_grant(KC, USER, "bypass.grant", {"until": "2026-12-01T20:00:00Z", "reason": "lost"},
                                  MemorySink([]), actor, NOW, notifier)


def test_the_grant_tells_the_notifier_who_what_and_by_whom() -> None:
    fake = FakeNotifier()
    assert _grant(fake) == "sent"
    assert fake.told == [("hana", "bypass.grant", {"until": "2026-12-01T20:00:00Z", "reason": "lost"}, "ops")]


def test_a_failing_notifier_never_undoes_the_grant() -> None:
    assert _grant(FakeNotifier(fail_with=KeycloakUnavailable("smtp settings unreadable"))) == \
        "failed: smtp settings unreadable"


def test_commands_and_pages_notify_by_e_mail() -> None:
    assert bypass.notify_on_grant.__defaults__ == (notify.EMAIL,)
    assert isinstance(notify.EMAIL, notify.EmailNotifier)
