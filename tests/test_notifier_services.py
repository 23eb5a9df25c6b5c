"""The services tell users through the Notifier they are given, as the clock is given (issue 27 item 5):
backup codes, a device reset, a help answer and the sync pass's reminder, against a real Keycloak with
the provider, with a fake notifier: no SMTP sink, and the fake sees exactly what the user is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from twostep import backup_codes, devices, help_requests
from twostep.actor import Actor
from twostep.audit import MemorySink
from twostep.clock import fixed_clock
from twostep.lock import lease_seconds
from twostep.sync.plan import Options
from twostep.sync.reconcile import run_once

from tests.conftest import Admin, Keycloak, MakeUser, Twostep
from tests.support.bypass_helpers import client
from tests.support.help_helpers import file_request, join_index
from tests.support.notifier import FakeNotifier
from tests.support.twofactor import setup_realm

ACTOR = Actor("helpdesk@test via test", False, (("test", "helpdesk"),))


def test_codes_and_device_reset_tell_the_user_through_the_notifier(twostep: Twostep, make_user: MakeUser,
                                                                   keycloak: Keycloak, realm: str) -> None:
    setup_realm(twostep)
    dana = make_user("dana", otp=True)
    kc = client(keycloak.url, realm)
    user = kc.get_user(dana.id)
    fake = FakeNotifier()
    now = datetime.now(UTC)
    codes, told = backup_codes.generate(kc, user, count=5, actor="helpdesk", now=now, sink=MemorySink([]),
                                        reason="lost phone", notifier=fake)
    assert len(codes) == 5 and told == "sent"
    removed, told = backup_codes.revoke(kc, user, actor="helpdesk", now=now, sink=MemorySink([]), notifier=fake)
    assert removed == 1 and told == "sent"
    reset = devices.reset_otp(kc, user, actor="helpdesk", now=now, sink=MemorySink([]), notifier=fake)
    assert reset.notified == "sent" and len(reset.removed) == 1
    assert [(u, kind) for u, kind, _d, _a in fake.told] == [
        ("dana", "codes.generate"), ("dana", "codes.revoke"), ("dana", "otp.reset")]
    assert fake.told[0][2] == {"count": 5, "reason": "lost phone"}, "the codes themselves are never told"


def test_a_failing_notifier_is_an_outcome_not_a_half_done_dismiss(twostep: Twostep, make_user: MakeUser,
                                                                 keycloak: Keycloak, admin: Admin,
                                                                 realm: str) -> None:
    setup_realm(twostep)
    erin = make_user("erin", otp=True)
    kc = client(keycloak.url, realm)
    file_request(admin, realm, erin.id, "new phone", asked_at=datetime.now(UTC) - timedelta(hours=1))
    join_index(admin, realm, erin.id)
    fake = FakeNotifier(outcome="skipped: no e-mail address")
    res = help_requests.dismiss(kc, fixed_clock(datetime.now(UTC)), MemorySink([]), ACTOR, "erin",
                                "call the help desk", notifier=fake)
    assert res["notified"] == "skipped: no e-mail address"
    assert [(u, kind, d["reason"]) for u, kind, d, _a in fake.told] == [("erin", "help.dismiss", "call the help desk")]
    assert help_requests.list_open(kc) == [], "the request is closed whatever the notifier answered"


def test_the_sync_pass_reminds_through_its_notifier(twostep: Twostep, make_user: MakeUser, keycloak: Keycloak,
                                                    realm: str) -> None:
    setup_realm(twostep, "--enforce", "all", "--grace-days", "7")
    make_user("fred")  # in scope, in grace, no second factor yet
    make_user("gina", otp=True)  # enrolled: nothing to remind
    kc = client(keycloak.url, realm)
    fake = FakeNotifier()
    summary, _state = run_once(kc, datetime.now(UTC), MemorySink([]), "sync: test", lease_seconds(kc.settings),
                               Options(remind=True, enforce=False), notifier=fake)
    assert not summary.errors, summary.errors
    assert [(u, kind) for u, kind, _d, _a in fake.told] == [("fred", "enroll.reminder")]
