"""Backup codes in Keycloak's ``recovery-authn-codes`` format: unit tests, then a real-server check.

The real-server tests use tests/conftest.py's Keycloak (``TWOSTEP_TEST_KEYCLOAK_URL``, else one it
starts) and a throwaway realm per test; one logs in through Keycloak's own recovery-code form with one
of our codes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import random
import re
import time
import uuid
from typing import Any

import pyotp
import pytest
from twostep import otp_credential as oc
from twostep import recovery_codes as rc

from tests.conftest import Admin, Keycloak
from tests.support.login import LoginDriver, Page

# Computed by Keycloak 26.7.3 itself (its jars, RecoveryAuthnCodesUtils.hashRawCode + Base64), not by us.
KEYCLOAK_KAT = {
    "ABCDEFGHJKLMN": (
        "ZFiIIbv+0iHKqExIAvqdnek3mV4PcQHH3srnq7QFGLyRzg0fqcXX3o0AUfZDkZijqiHGmJVAGJSWzPXuij+N0g=="
    ),
    "4XK9PQRT2MZ7W": (
        "sawNYnVqD7N9IPV86odDvOH4RHME0cD+c6IhUw+9PVJeEjKdQOnp5fiXxS1klAsmMFYmaOiYm3wwnhhcZ1RiIw=="
    ),
    "ABCD1234EFGH5": (
        "NwuZvMY4b6IkVK3eqFETRWlGghN5flEPNfp63tAwGC0oYxhK9MpI3gjyOkgTzDRT1gWeIijDky+F2s9TYDiuLQ=="
    ),
}
# RecoveryAuthnCodesCredentialModel.createFromValues(["ABCDEFGHJKLMN", "4XK9PQRT2MZ7W"], ...) in 26.7.3:
KEYCLOAK_CREDENTIAL_DATA = '{"algorithm":"SHA-512","totalCodes":2,"remainingCodes":2}'
KEYCLOAK_SECRET_DATA = (
    '{"codes":[{"number":1,"encodedHashedValue":"' + KEYCLOAK_KAT["ABCDEFGHJKLMN"] + '"},'
    '{"number":2,"encodedHashedValue":"' + KEYCLOAK_KAT["4XK9PQRT2MZ7W"] + '"}]}'
)


# ---------------------------------------------------------------- hash


@pytest.mark.parametrize("raw", sorted(KEYCLOAK_KAT))
def test_hash_matches_keycloak_known_answers(raw: str) -> None:
    assert rc.hash_code(raw) == KEYCLOAK_KAT[raw]


def test_hash_matches_independent_hashlib() -> None:
    raw = "QWERTYUPASDFG"
    expected = base64.b64encode(hashlib.sha512(raw.encode()).digest()).decode()
    assert rc.hash_code(raw) == expected
    assert len(base64.b64decode(rc.hash_code(raw))) == 64


def test_hash_strips_dashes_like_keycloaks_form() -> None:
    assert rc.hash_code("ABCD-EFGH-JKLMN") == KEYCLOAK_KAT["ABCDEFGHJKLMN"]
    assert rc.hash_code("A-B-C-DEFGHJKLMN--") == KEYCLOAK_KAT["ABCDEFGHJKLMN"]


def test_hash_does_not_fold_case_or_trim_like_keycloak() -> None:
    # Keycloak's form only does replace("-", ""): these would be rejected there, so they must differ here.
    assert rc.hash_code("abcd-efgh-jklmn") != KEYCLOAK_KAT["ABCDEFGHJKLMN"]
    assert rc.hash_code(" ABCDEFGHJKLMN") != KEYCLOAK_KAT["ABCDEFGHJKLMN"]
    assert rc.hash_code("ABCD EFGH JKLMN") != KEYCLOAK_KAT["ABCDEFGHJKLMN"]


@pytest.mark.parametrize("bad", ["", "-", "---"])
def test_hash_rejects_empty(bad: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        rc.hash_code(bad)


def test_hash_rejects_non_string() -> None:
    with pytest.raises(ValueError):
        rc.hash_code(123)  # type: ignore[arg-type]


# ---------------------------------------------------------------- generate

CODE_RE = re.compile(r"[A-Z1-9]{4}-[A-Z1-9]{4}-[A-Z1-9]{5}")


def test_generated_codes_shape_alphabet_and_entropy() -> None:
    codes = rc.generate_codes(12)
    assert len(codes) == 12
    assert len(set(codes)) == 12
    for code in codes:
        assert CODE_RE.fullmatch(code), code
        raw = rc.normalize_code(code)
        assert len(raw) == rc.CODE_LENGTH
        assert set(raw) <= set(rc.ALPHABET)
        assert "O" not in raw and "0" not in raw
    assert len(rc.ALPHABET) == len(set(rc.ALPHABET)) == 34
    assert rc.CODE_LENGTH * math.log2(len(rc.ALPHABET)) >= 64


def test_alphabet_is_keycloaks_own() -> None:
    assert rc.ALPHABET == "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"


def test_default_rng_is_a_csprng() -> None:
    assert isinstance(rc._SYSTEM_RANDOM, random.SystemRandom)


def test_generation_uses_given_rng_deterministically() -> None:
    assert rc.generate_codes(5, random.Random(7)) == rc.generate_codes(5, random.Random(7))
    assert rc.generate_codes(5, random.Random(7)) != rc.generate_codes(5, random.Random(8))


def test_generation_covers_the_whole_alphabet_roughly_uniformly() -> None:
    rng = random.Random(1234)
    counts = dict.fromkeys(rc.ALPHABET, 0)
    for _ in range(40):
        for code in rc.generate_codes(50, rng):
            for ch in rc.normalize_code(code):
                counts[ch] += 1
    n = sum(counts.values())  # 26000 symbols, ~765 each
    assert all(abs(c - n / 34) < 0.2 * n / 34 for c in counts.values()), counts


class _StuckRandom:
    def choice(self, seq: str, /) -> str:
        return seq[0]


def test_generation_refuses_a_repeating_rng() -> None:
    with pytest.raises(RuntimeError, match="repeating"):
        rc.generate_codes(5, _StuckRandom())


@pytest.mark.parametrize("count", [0, 1, 4, 51, 1000, -3])
def test_generation_count_out_of_bounds(count: int) -> None:
    with pytest.raises(ValueError, match=r"between 5 and 50"):
        rc.generate_codes(count)


@pytest.mark.parametrize("count", [5.0, "12", True, None])
def test_generation_count_must_be_int(count: Any) -> None:
    with pytest.raises(ValueError, match="integer"):
        rc.generate_codes(count)


@pytest.mark.parametrize("count", [5, 50])
def test_generation_count_bounds_inclusive(count: int) -> None:
    assert len(rc.generate_codes(count)) == count


def test_errors_are_both_value_error_and_project_invalid_input() -> None:
    from twostep.errors import InvalidInput

    with pytest.raises(InvalidInput):
        rc.generate_codes(0)


# ---------------------------------------------------------------- representation


def test_representation_is_byte_identical_to_keycloaks() -> None:
    rep = rc.credential_representation(
        ["ABCD-EFGH-JKLMN", "4XK9-PQRT-2MZ7W"], 1_700_000_000_000, "Backup codes"
    )
    assert rep == {
        "type": "recovery-authn-codes",
        "userLabel": "Backup codes",
        "createdDate": 1_700_000_000_000,
        "secretData": KEYCLOAK_SECRET_DATA,
        "credentialData": KEYCLOAK_CREDENTIAL_DATA,
    }


def test_representation_without_label_has_no_user_label() -> None:
    rep = rc.credential_representation(rc.generate_codes(5), 1, None)
    assert "userLabel" not in rep
    secret = json.loads(rep["secretData"])
    assert [c["number"] for c in secret["codes"]] == [1, 2, 3, 4, 5]
    assert set(json.loads(rep["credentialData"])) == {"algorithm", "totalCodes", "remainingCodes"}


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        ([], "1 to 50"),
        (["A"] * 51, "1 to 50"),
        (["ABCD-EFGH", "ABCDEFGH"], "distinct"),
        (["ABCD EFGH"], "letters and digits"),
        (["---"], "letters and digits"),
        ([""], "letters and digits"),
        ([5], "letters and digits"),
        ("ABCD-EFGH", "list"),
    ],
)
def test_representation_rejects_bad_codes(codes: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.credential_representation(codes, 1, None)


@pytest.mark.parametrize("created", [-1, 1.5, "1", True])
def test_representation_rejects_bad_created(created: Any) -> None:
    with pytest.raises(ValueError, match="created_ms"):
        rc.credential_representation(["ABCD"], created, None)


# ---------------------------------------------------------------- parse


def _cred(data: object, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "id": "cid",
        "type": "recovery-authn-codes",
        "userLabel": "L",
        "createdDate": 1_700_000_000_000,
        "credentialData": data if isinstance(data, str) else json.dumps(data),
    }
    c.update(extra)
    return c


def test_parse_current_format() -> None:
    info = rc.parse_credential(_cred('{"algorithm":"SHA-512","totalCodes":12,"remainingCodes":9}'))
    assert info == rc.CodesInfo(
        total=12, remaining=9, created_ms=1_700_000_000_000, next_number=4, credential_id="cid", label="L"
    )
    assert info.used == 3
    assert not info.legacy_format


def test_parse_pre_26_2_format_with_total() -> None:
    info = rc.parse_credential(
        _cred({"hashIterations": 1, "algorithm": "RS512", "totalCodes": 12, "remainingCodes": 7})
    )
    assert (info.total, info.remaining, info.next_number, info.legacy_format) == (12, 7, 6, True)


def test_parse_oldest_format_without_total() -> None:
    info = rc.parse_credential(_cred({"hashIterations": 1, "algorithm": "RS512", "remainingCodes": 12}))
    assert (info.total, info.remaining, info.next_number, info.used) == (None, 12, None, None)


def test_parse_oldest_format_rewritten_by_new_keycloak() -> None:
    # Keycloak 26.7.3 re-serializes a total-less credential as totalCodes 0 once a code is used.
    info = rc.parse_credential(
        _cred({"hashIterations": 1, "algorithm": "RS512", "totalCodes": 0, "remainingCodes": 11})
    )
    assert (info.total, info.remaining, info.next_number) == (None, 11, None)


def test_parse_jackson_creator_aliases() -> None:
    info = rc.parse_credential(_cred({"algorithm": "SHA-512", "total": 5, "remaining": 2}))
    assert (info.total, info.remaining, info.next_number) == (5, 2, 4)


def test_parse_with_secret_data_uses_it() -> None:
    rep = rc.credential_representation(["ABCD-EFGH-JKLMN", "4XK9-PQRT-2MZ7W"], 5, None)
    info = rc.parse_credential(rep)
    assert (info.total, info.remaining, info.next_number, info.created_ms, info.label) == (2, 2, 1, 5, None)
    secret = json.loads(rep["secretData"])
    secret["codes"].pop(0)
    rep["secretData"] = json.dumps(secret)
    info = rc.parse_credential(rep)
    assert (info.remaining, info.next_number) == (1, 2)


def test_parse_all_used() -> None:
    info = rc.parse_credential(_cred({"algorithm": "SHA-512", "totalCodes": 3, "remainingCodes": 0}))
    assert (info.remaining, info.next_number, info.used) == (0, None, 3)


def test_parse_tolerates_unknown_keys_and_missing_optional_fields() -> None:
    info = rc.parse_credential(
        {
            "type": "recovery-authn-codes",
            "credentialData": {"algorithm": "SHA-512", "remainingCodes": 1, "x": 2},
        }
    )
    assert (info.remaining, info.created_ms, info.label, info.credential_id) == (1, None, None, None)


@pytest.mark.parametrize(
    ("cred", "match"),
    [
        ({"type": "otp", "credentialData": "{}"}, "not a recovery-authn-codes"),
        ({"type": "recovery-authn-codes"}, "no credentialData"),
        (_cred("{not json"), "not valid JSON"),
        (_cred("[1]"), "JSON object"),
        (_cred({"algorithm": "MD5", "remainingCodes": 1}), "algorithm"),
        (_cred({"algorithm": "SHA-512", "totalCodes": 1}), "no remainingCodes"),
        (_cred({"algorithm": "SHA-512", "remainingCodes": -1}), "non-negative"),
        (_cred({"algorithm": "SHA-512", "remainingCodes": "3"}), "non-negative"),
        (_cred({"algorithm": "SHA-512", "remainingCodes": True}), "non-negative"),
        (_cred({"algorithm": "SHA-512", "totalCodes": 2, "remainingCodes": 3}), "remain of"),
        (_cred({"algorithm": "SHA-512", "remainingCodes": 1}, createdDate="yesterday"), "createdDate"),
        (
            _cred({"algorithm": "SHA-512", "remainingCodes": 1}, secretData='{"codes":[{"n":1}]}'),
            "secretData",
        ),
        ("recovery-authn-codes", "JSON object"),
    ],
)
def test_parse_rejects_bad_input(cred: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rc.parse_credential(cred)


# ================================================================ real Keycloak
# Uses the lead's fixtures from tests/conftest.py: `keycloak` (TWOSTEP_TEST_KEYCLOAK_URL or a fresh
# server), `admin` (master-realm admin), `realm` (throwaway realm with the public client TEST_CLIENT).


class _Driver(LoginDriver):
    """LoginDriver whose cookies reach Keycloak on plain http.

    ``requests`` builds each request's Cookie header from a fresh jar with the *default* policy (it
    merges the session jar into a new ``RequestsCookieJar``), so LoginDriver's LocalhostCookies policy is
    not consulted and Keycloak's ``Secure`` login cookies are never sent to http://127.0.0.1. Clearing
    the flag after each page works around that.
    """

    def _fetch(self, method: str, url: str, data: dict[str, str] | None = None) -> Page:
        page = super()._fetch(method, url, data)
        for c in self.s.cookies:
            c.secure = False
        return page


def _offer_recovery_form(admin: Admin, realm: str) -> dict[str, str]:
    """Bind a copy of the browser flow whose 2FA subflow offers the recovery-code form next to OTP."""
    flows = f"/{realm}/authentication/flows"
    admin.post(f"{flows}/browser/copy", {"newName": "twostep-test-browser"})
    by_provider = {e.get("providerId"): e for e in admin.get(f"{flows}/twostep-test-browser/executions")}
    rec = by_provider["auth-recovery-authn-code-form"]
    rec["requirement"] = "ALTERNATIVE"
    admin.put(f"{flows}/twostep-test-browser/executions", rec)
    assert by_provider["auth-otp-form"]["requirement"] == "ALTERNATIVE"
    rep = admin.get(f"/{realm}")
    rep["browserFlow"] = "twostep-test-browser"
    admin.put(f"/{realm}", rep)
    return {"recovery": rec["id"], "otp": by_provider["auth-otp-form"]["id"]}


def _create_user(
    admin: Admin, realm: str, username: str, credentials: list[dict[str, Any]]
) -> tuple[str, str]:
    password = "Pw-" + uuid.uuid4().hex[:12]
    r = admin.post(
        f"/{realm}/users",
        {
            "username": username,
            "enabled": True,
            "email": f"{username}@example.test",
            "emailVerified": True,
            "firstName": username.title(),
            "lastName": "Test",
            "credentials": [{"type": "password", "value": password, "temporary": False}, *credentials],
        },
    )
    return str(r.headers["Location"].rsplit("/", 1)[-1]), password


def _credentials(admin: Admin, realm: str, uid: str, ctype: str) -> list[dict[str, Any]]:
    return [c for c in admin.get(f"/{realm}/users/{uid}/credentials") if c["type"] == ctype]


def test_keycloak_stores_and_reports_our_credentials(admin: Admin, realm: str) -> None:
    codes = rc.generate_codes(10)
    created = int(time.time() * 1000)
    uid, _ = _create_user(
        admin,
        realm,
        "stored",
        [
            oc.otp_credential_representation(oc.new_totp_secret(), "Phone"),
            rc.credential_representation(codes, created, "Backup codes"),
        ],
    )
    [cred] = _credentials(admin, realm, uid, "recovery-authn-codes")
    assert "secretData" not in cred  # stripped by the admin API
    assert cred["credentialData"] == '{"algorithm":"SHA-512","totalCodes":10,"remainingCodes":10}'
    assert (cred["createdDate"], cred["userLabel"]) == (created, "Backup codes")
    info = rc.parse_credential(cred)
    assert (info.total, info.remaining, info.next_number, info.created_ms) == (10, 10, 1, created)
    [otp] = _credentials(admin, realm, uid, "otp")
    assert otp["credentialData"] == json.dumps(
        {
            "subType": "totp",
            "digits": 6,
            "counter": 0,
            "period": 30,
            "algorithm": "HmacSHA1",
            "secretEncoding": "BASE32",
        },
        separators=(",", ":"),
    )
    assert otp["userLabel"] == "Phone"


def test_keycloak_refuses_unknown_credential_data_keys(admin: Admin, realm: str) -> None:
    rep = rc.credential_representation(rc.generate_codes(5), 1, None)
    data = json.loads(rep["credentialData"])
    data["extra"] = 1
    rep["credentialData"] = json.dumps(data)
    with pytest.raises(AssertionError, match=r"-> 500 .*Cannot parse the JSON"):
        admin.post(f"/{realm}/users", {"username": "unknownkeys", "credentials": [rep]})
    assert admin.get(f"/{realm}/users", username="unknownkeys", exact="true") == []  # rolled back


def test_keycloak_accepts_and_reports_pre_26_2_format(admin: Admin, realm: str) -> None:
    rep = rc.credential_representation(rc.generate_codes(5), 1, None)
    rep["credentialData"] = '{"hashIterations":1,"algorithm":"RS512","remainingCodes":5}'
    uid, _ = _create_user(admin, realm, "legacy", [rep])
    [cred] = _credentials(admin, realm, uid, "recovery-authn-codes")
    info = rc.parse_credential(cred)
    assert (info.total, info.remaining, info.legacy_format) == (None, 5, True)


def test_login_with_our_backup_code_through_keycloaks_form(
    keycloak: Keycloak, admin: Admin, realm: str
) -> None:
    execs = _offer_recovery_form(admin, realm)
    codes = rc.generate_codes(6)
    uid, password = _create_user(
        admin,
        realm,
        "codeuser",
        [
            oc.otp_credential_representation(oc.new_totp_secret(), "Phone"),
            rc.credential_representation(codes, int(time.time() * 1000), None),
        ],
    )
    d = _Driver(keycloak.url, realm)
    page = d.login("codeuser", password)
    assert page.kind == "otp", page.summary()  # OTP first: it was created before the codes
    page = d.try_another_way()
    assert page.kind == "select-authenticator", page.summary()
    page = d.submit({"authenticationExecution": execs["recovery"]})
    assert page.kind == "recovery-code", page.summary()
    assert "Recovery code #1" in _text(page.text)  # Keycloak asks for code number 1

    # Only the next code by number is accepted, and Keycloak does not fold case.
    for wrong in (codes[1], codes[0].lower()):
        page = d.submit({rc.FORM_FIELD: wrong})
        assert page.kind == "recovery-code", page.summary()
        assert "Invalid recovery authentication code" in _text(page.text)
    [cred] = _credentials(admin, realm, uid, "recovery-authn-codes")
    assert rc.parse_credential(cred).remaining == 6

    page = d.submit({rc.FORM_FIELD: codes[0]})  # as displayed, with its dashes
    assert d.logged_in(), page.summary()

    [cred] = _credentials(admin, realm, uid, "recovery-authn-codes")
    # Keycloak rewrote credentialData itself: exactly our format, one code fewer.
    assert cred["credentialData"] == rc.credential_data_json(6, 5)
    info = rc.parse_credential(cred)
    assert (info.total, info.remaining, info.next_number, info.used) == (6, 5, 2, 1)


def test_login_with_totp_from_our_base32_secret(keycloak: Keycloak, admin: Admin, realm: str) -> None:
    secret = oc.new_totp_secret()
    _, password = _create_user(admin, realm, "otpuser", [oc.otp_credential_representation(secret, "Phone")])
    d = _Driver(keycloak.url, realm)
    page = d.login("otpuser", password)
    assert page.kind == "otp", page.summary()
    # With secretEncoding BASE32 the HMAC key is the decoded secret; the UTF-8 reading must fail.
    utf8_reading = pyotp.TOTP(base64.b32encode(secret.encode()).decode().rstrip("="))
    page = d.submit({"otp": utf8_reading.now()})
    assert page.kind == "otp" and not d.logged_in(), page.summary()
    page = d.submit({"otp": oc.totp(secret).now()})
    assert d.logged_in(), page.summary()


def _text(page: str) -> str:
    body = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).strip()
