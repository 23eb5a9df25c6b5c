"""TOTP devices in Keycloak's ``otp`` credential format.

The real-server OTP login is in test_recovery_codes.py (it shares that file's throwaway realm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import struct
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
from twostep import otp_credential as oc

# OTPCredentialModel.createTOTP(secret, 6, 30, "HmacSHA1", "BASE32").getCredentialData() in Keycloak 26.7.3:
KEYCLOAK_OTP_CREDENTIAL_DATA = (
    '{"subType":"totp","digits":6,"counter":0,"period":30,"algorithm":"HmacSHA1","secretEncoding":"BASE32"}'
)
RFC6238_KEY = b"12345678901234567890"  # RFC 6238 appendix B, SHA-1


def test_new_secret_is_160_bit_base32() -> None:
    s = oc.new_totp_secret()
    assert len(s) == 32 and s == s.upper() and "=" not in s
    assert len(base64.b32decode(s)) == 20
    assert len({oc.new_totp_secret() for _ in range(50)}) == 50


def test_new_secret_uses_given_rng() -> None:
    assert oc.new_totp_secret(random.Random(3)) == oc.new_totp_secret(random.Random(3))
    assert isinstance(oc._SYSTEM_RANDOM, random.SystemRandom)


def test_representation_matches_keycloak() -> None:
    secret = oc.new_totp_secret()
    rep = oc.otp_credential_representation(secret, "Phone")
    assert rep == {
        "type": "otp",
        "userLabel": "Phone",
        "secretData": json.dumps({"value": secret}, separators=(",", ":")),
        "credentialData": KEYCLOAK_OTP_CREDENTIAL_DATA,
    }


def test_representation_options() -> None:
    secret = oc.new_totp_secret()
    rep = oc.otp_credential_representation(
        secret, None, digits=8, period=60, algorithm="HmacSHA256", created_ms=7
    )
    assert "userLabel" not in rep and rep["createdDate"] == 7
    assert json.loads(rep["credentialData"]) == {
        "subType": "totp",
        "digits": 8,
        "counter": 0,
        "period": 60,
        "algorithm": "HmacSHA256",
        "secretEncoding": "BASE32",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"secret_b32": ""}, "non-empty"),
        ({"secret_b32": "abcdefghijklmnopqrstuvwxyz234567"}, "upper-case"),
        ({"secret_b32": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ===="}, "unpadded"),
        ({"secret_b32": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1"}, "Base32"),
        ({"secret_b32": "GEZDGNBVGY3TQOJQ"}, "at least 128 bits"),
        ({"digits": 7}, "digits"),
        ({"digits": True}, "digits"),
        ({"period": 0}, "period"),
        ({"period": 30.0}, "period"),
        ({"algorithm": "SHA1"}, "algorithm"),
        ({"created_ms": -5}, "created_ms"),
        ({"label": 3}, "label"),
    ],
)
def test_representation_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"secret_b32": oc.new_totp_secret(), "label": "x", **kwargs}
    with pytest.raises(ValueError, match=match):
        oc.otp_credential_representation(**args)


def _rfc6238(key: bytes, t: int, digits: int = 8, period: int = 30) -> str:
    """Independent TOTP (RFC 6238 / RFC 4226 dynamic truncation) with SHA-1."""
    mac = hmac.new(key, struct.pack(">Q", t // period), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return str((int.from_bytes(mac[off : off + 4], "big") & 0x7FFFFFFF) % 10**digits).zfill(digits)


def test_totp_uses_base32_decoded_key_rfc6238_vectors() -> None:
    secret = base64.b32encode(RFC6238_KEY).decode()
    t = oc.totp(secret, digits=8)
    for when, expected in [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924")]:
        assert t.at(when) == expected == _rfc6238(RFC6238_KEY, when)


def test_provisioning_uri() -> None:
    secret = oc.new_totp_secret()
    uri = oc.provisioning_uri(
        secret, "alice@example.org", "Example Corp", digits=8, period=60, algorithm="HmacSHA256"
    )
    p = urlparse(uri)
    assert (p.scheme, p.netloc) == ("otpauth", "totp")
    assert unquote(p.path) == "/Example Corp:alice@example.org"
    q = {k: v[0] for k, v in parse_qs(p.query).items()}
    assert q["secret"] == secret and q["issuer"] == "Example Corp"
    assert (q["digits"], q["period"], q["algorithm"]) == ("8", "60", "SHA256")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.now() == oc.totp(secret, digits=8, period=60, algorithm="HmacSHA256").now()


def test_provisioning_uri_defaults_parse_back() -> None:
    secret = oc.new_totp_secret()
    uri = oc.provisioning_uri(secret, "bob", "Acme")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.now() == oc.totp(secret).now()


@pytest.mark.parametrize(("name", "issuer"), [("", "Acme"), ("bob", "")])
def test_provisioning_uri_rejects_empty_names(name: str, issuer: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        oc.provisioning_uri(oc.new_totp_secret(), name, issuer)
