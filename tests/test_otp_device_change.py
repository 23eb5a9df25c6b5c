"""Changed phone (self-service): enroll the new device through Keycloak's own kc_action, then
remove the old one; at no point has the user zero devices."""

from __future__ import annotations

import base64
import time
from datetime import datetime

import pyotp
import pytest
from twostep import devices
from twostep.audit import MemorySink
from twostep.errors import Conflict, NotFound

from tests.conftest import Admin, Browser, Keycloak, MakeUser, Twostep
from tests.support.twofactor import finish_sign_in, kc_client, setup_realm


def otp_count(admin: Admin, realm: str, uid: str) -> int:
    return sum(1 for c in admin.get(f"/{realm}/users/{uid}/credentials") if c["type"] == "otp")


def test_device_change_keeps_a_device_at_every_step(twostep: Twostep, keycloak: Keycloak, make_user: MakeUser,
                                                    browser: Browser, admin: Admin,
                                                    realm: str) -> None:
    setup_realm(twostep)
    hal = make_user("hal", otp=True)
    kc = kc_client(keycloak.url, realm)
    b = browser()
    b.login(hal.username, hal.password)
    b.submit({"otp": hal.code()})
    finish_sign_in(b, admin, realm)

    plan = devices.change_device_plan(kc, hal.id)
    assert len(plan.old_ids) == 1
    with pytest.raises(NotFound):
        devices.finish_device_change(kc, hal.id, "no-such-device")
    assert otp_count(admin, realm, hal.id) == 1, "nothing removed before a new device exists"
    assert devices.new_device_id(kc, hal.id, plan) is None

    page = b.open(kc_action="CONFIGURE_TOTP")
    assert page.kind == "configure-totp", page.summary()
    assert otp_count(admin, realm, hal.id) == 1
    form = page.form_with("totpSecret")
    new_secret = base64.b32encode(form.fields["totpSecret"].encode()).decode()
    page = b.submit({"totp": pyotp.TOTP(new_secret).now(), "userLabel": "new phone"}, form_field="totpSecret")
    assert b.logged_in(), page.summary()
    assert "kc_action_status=success" in page.url
    assert otp_count(admin, realm, hal.id) == 2, "old and new device both exist before the switch"

    new_id = devices.new_device_id(kc, hal.id, plan)
    assert new_id is not None
    sink = MemorySink([])
    removed = devices.finish_device_change(kc, hal.id, new_id, now=datetime.now().astimezone(),
                                           sink=sink)
    assert [d.id for d in removed] == list(plan.old_ids)
    assert [d.label for d in devices.list_devices(kc, hal.id)] == ["new phone"]
    assert sink.events[0]["event"] == "otp.device_change"
    assert new_secret not in str(sink.events) and hal.totp_secret and hal.totp_secret not in str(sink.events)

    # Old device fails, new device works.
    b2 = browser()
    assert b2.login(hal.username, hal.password).kind == "otp"
    old = hal.code()
    b2.submit({"otp": old})
    assert not b2.logged_in(), "the old device's code must fail"
    time.sleep(1.2)  # failures less than 1 s apart would lock the user (brute-force protection)
    b2.submit({"otp": pyotp.TOTP(new_secret).at(time.time() + 30)})
    assert b2.logged_in(), b2.page.summary() if b2.page else ""


def test_remove_device_refuses_the_last_one_when_required(twostep: Twostep, keycloak: Keycloak, make_user: MakeUser,
                                                          admin: Admin,
                                                          realm: str) -> None:
    setup_realm(twostep)
    ida = make_user("ida", otp=True)
    kc = kc_client(keycloak.url, realm)
    only = devices.list_devices(kc, ida.id)
    with pytest.raises(Conflict):
        devices.remove_device(kc, ida.id, only[0].id, required=True)
    assert otp_count(admin, realm, ida.id) == 1
    with pytest.raises(NotFound):
        devices.remove_device(kc, ida.id, "not-a-device", required=False)

    from tests.conftest import otp_credential

    rep = admin.get(f"/{realm}/users/{ida.id}")
    rep["credentials"] = [otp_credential(pyotp.random_base32(), "spare")]
    admin.put(f"/{realm}/users/{ida.id}", rep)
    assert otp_count(admin, realm, ida.id) == 2
    removed = devices.remove_device(kc, ida.id, only[0].id, required=True)
    assert removed.label == "phone"
    assert [d.label for d in devices.list_devices(kc, ida.id)] == ["spare"]
