"""TOTP devices in Keycloak 26.7's ``otp`` credential format (pure: no I/O).

What Keycloak 26.7.3 does (``server-spi/.../models/credential/OTPCredentialModel.java``,
``.../credential/dto/OTPSecretData.java``, ``.../credential/dto/OTPCredentialData.java``,
``services/.../credential/OTPCredentialProvider.java``; checked in its compiled classes and on a real server):

* type ``otp``; secretData ``{"value":"<secret>"}``;
* credentialData keys ``subType`` (``totp``/``hotp``), ``digits``, ``counter``, ``period``, ``algorithm``
  (``HmacSHA1``/``HmacSHA256``/``HmacSHA512``) and the optional ``secretEncoding``. Nothing else: the
  Jackson mapper fails on unknown keys.
* ``OTPCredentialModel.getDecodedSecret()``: with ``secretEncoding`` ``BASE32`` (case-insensitive) the HMAC
  key is ``Base32.decode(value)``; without it the key is the UTF-8 bytes of ``value`` (what Keycloak's own
  setup page stores). We store ``BASE32`` so the key is the 160 random bits the authenticator app gets.
* ``createdDate`` is set to "now" by Keycloak when absent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from typing import Any, Protocol

import pyotp

from twostep.recovery_codes import CredentialFormatError

CREDENTIAL_TYPE = "otp"
SECRET_ENCODING = "BASE32"
SECRET_BYTES = 20
"""160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends."""
MIN_SECRET_BYTES = 16
ALGORITHMS: dict[str, str] = {"HmacSHA1": "sha1", "HmacSHA256": "sha256", "HmacSHA512": "sha512"}
DIGITS = (6, 8)
_BASE32 = re.compile(r"[A-Z2-7]+")


class BitSource(Protocol):
    """What we need from ``secrets.SystemRandom`` (or a seeded ``random.Random`` in tests)."""

    def getrandbits(self, k: int, /) -> int: ...


_SYSTEM_RANDOM = secrets.SystemRandom()


def new_totp_secret(rng: BitSource = _SYSTEM_RANDOM) -> str:
    """A fresh 160-bit secret as unpadded upper-case Base32 (32 characters)."""
    return base64.b32encode(rng.getrandbits(SECRET_BYTES * 8).to_bytes(SECRET_BYTES, "big")).decode("ascii")


def decode_secret(secret_b32: str) -> bytes:
    """The HMAC key for ``secret_b32``; rejects what Keycloak or authenticator apps might not take."""
    if not isinstance(secret_b32, str) or not secret_b32:
        raise CredentialFormatError("OTP secret must be a non-empty Base32 string")
    if not _BASE32.fullmatch(secret_b32):
        raise CredentialFormatError("OTP secret must be unpadded upper-case Base32 (A-Z, 2-7)")
    try:
        key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    except (binascii.Error, ValueError):
        raise CredentialFormatError("OTP secret is not valid Base32") from None
    if len(key) < MIN_SECRET_BYTES:
        raise CredentialFormatError(
            f"OTP secret must hold at least {MIN_SECRET_BYTES * 8} bits, got {len(key) * 8}"
        )
    return key


def _check_params(digits: int, period: int, algorithm: str) -> None:
    if isinstance(digits, bool) or digits not in DIGITS:
        raise CredentialFormatError(f"digits must be one of {DIGITS}, got {digits!r}")
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= 600:
        raise CredentialFormatError(f"period must be 1..600 seconds, got {period!r}")
    if algorithm not in ALGORITHMS:
        raise CredentialFormatError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")


def otp_credential_representation(
    secret_b32: str,
    label: str | None,
    digits: int = 6,
    period: int = 30,
    algorithm: str = "HmacSHA1",
    created_ms: int | None = None,
) -> dict[str, Any]:
    """A TOTP CredentialRepresentation for ``POST /users`` / ``PUT /users/{id}`` (``credentials[]``)."""
    decode_secret(secret_b32)
    _check_params(digits, period, algorithm)
    if label is not None and not isinstance(label, str):
        raise CredentialFormatError("label must be a string or None")
    credential_data = {
        "subType": "totp",
        "digits": digits,
        "counter": 0,
        "period": period,
        "algorithm": algorithm,
        "secretEncoding": SECRET_ENCODING,
    }
    rep: dict[str, Any] = {
        "type": CREDENTIAL_TYPE,
        "secretData": json.dumps({"value": secret_b32}, separators=(",", ":")),
        "credentialData": json.dumps(credential_data, separators=(",", ":")),
    }
    if label is not None:
        rep["userLabel"] = label
    if created_ms is not None:
        if isinstance(created_ms, bool) or not isinstance(created_ms, int) or created_ms < 0:
            raise CredentialFormatError(f"created_ms must be a non-negative integer, got {created_ms!r}")
        rep["createdDate"] = created_ms
    return rep


def totp(secret_b32: str, digits: int = 6, period: int = 30, algorithm: str = "HmacSHA1") -> pyotp.TOTP:
    """A ``pyotp.TOTP`` computing the same codes Keycloak accepts for this credential."""
    decode_secret(secret_b32)
    _check_params(digits, period, algorithm)
    return pyotp.TOTP(
        secret_b32, digits=digits, interval=period, digest=getattr(hashlib, ALGORITHMS[algorithm])
    )


def provisioning_uri(
    secret_b32: str,
    account_name: str,
    issuer: str,
    digits: int = 6,
    period: int = 30,
    algorithm: str = "HmacSHA1",
) -> str:
    """The ``otpauth://totp/...`` URI (QR code content) for authenticator apps."""
    if not account_name or not issuer:
        raise CredentialFormatError("account name and issuer must not be empty")
    return totp(secret_b32, digits, period, algorithm).provisioning_uri(name=account_name, issuer_name=issuer)
