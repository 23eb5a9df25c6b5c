"""Backup codes in Keycloak 26.7's own ``recovery-authn-codes`` credential format (pure: no I/O).

What Keycloak 26.7.3 does (read in its source and its compiled classes, and checked on a real server):

* Credential type ``recovery-authn-codes``
  (``server-spi/.../models/credential/RecoveryAuthnCodesCredentialModel.java``).
* secretData ``{"codes":[{"number":1,"encodedHashedValue":"<base64>"}, ...]}``
  (``.../credential/dto/RecoveryAuthnCodesSecretData.java``, ``RecoveryAuthnCodeRepresentation.java``).
  The *first element of the list* is the only code accepted next; a used code is removed from the list.
* credentialData as written since 26.2 ``{"algorithm":"SHA-512","totalCodes":N,"remainingCodes":N}``
  (``.../credential/dto/RecoveryAuthnCodesCredentialData.java``; ``hashIterations`` is null and omitted).
  Before 26.2: ``{"hashIterations":1,"algorithm":"RS512",...}`` (same hash bytes), older still without
  ``totalCodes``. Keycloak's Jackson mapper fails on unknown keys, so we write exactly these keys.
* Hash (``server-spi/.../models/utils/RecoveryAuthnCodesUtils.java``): one unsalted SHA-512 over the UTF-8
  bytes of the code, standard padded Base64, compared in constant time.
* The login form (``services/.../authenticators/browser/RecoveryAuthnCodesFormAuthenticator.java``) reads
  field ``recoveryCodeInput`` and removes every ``-`` (``replace("-", "")``) and nothing else: no trimming,
  no case folding. Codes are therefore hashed without dashes, and must be typed in upper case.
* After a successful code ``remainingCodes`` is set to the number left; when none is left Keycloak deletes
  the credential and adds the ``CONFIGURE_RECOVERY_AUTHN_CODES`` required action.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twostep.errors import InvalidInput

CREDENTIAL_TYPE = "recovery-authn-codes"
HASH_ALGORITHM = "SHA-512"
"""The ``algorithm`` Keycloak 26.2+ writes into credentialData."""
LEGACY_HASH_ALGORITHM = "RS512"
"""The ``algorithm`` written before 26.2; Keycloak hashes it with the same SHA-512."""
FORM_FIELD = "recoveryCodeInput"

ALPHABET = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"
"""Keycloak's own alphabet (``RecoveryAuthnCodesUtils.UPPERNUM``): upper case, no ``O`` and no ``0``."""
CODE_LENGTH = 13
"""13 symbols of 34 = 66.1 bits per code (Keycloak's own: 12 symbols = 61 bits)."""
GROUPS = (4, 4, 5)
"""Displayed as ``XXXX-XXXX-XXXXX``; Keycloak's form strips the dashes."""
MIN_CODES = 5
MAX_CODES = 50
"""Keycloak has no upper bound (it always generates 12); ours keeps the stored JSON and the sheet small."""

_STORABLE_CODE = re.compile(r"[A-Za-z0-9]+")


class CredentialFormatError(InvalidInput, ValueError):
    """Input that cannot become, or did not come from, a Keycloak credential of the expected format."""


class RandomSource(Protocol):
    """What we need from ``secrets.SystemRandom`` (or a seeded ``random.Random`` in tests)."""

    def choice(self, seq: str, /) -> str: ...


_SYSTEM_RANDOM = secrets.SystemRandom()


@dataclass(frozen=True)
class CodesInfo:
    """What the admin API tells about a user's backup codes (its secretData is stripped there)."""

    total: int | None
    """Codes in the set when it was made; ``None`` when unknown: written before ``totalCodes`` existed
    (Keycloak 26.2+ then writes ``"totalCodes":0`` once a code is used)."""
    remaining: int
    created_ms: int | None
    next_number: int | None
    """Number of the only code Keycloak accepts next; ``None`` when none is left or it can't be known."""
    credential_id: str | None = None
    label: str | None = None
    algorithm: str = HASH_ALGORITHM
    legacy_format: bool = False
    """True for a credential written before Keycloak 26.2 (``RS512`` / ``hashIterations``)."""

    @property
    def used(self) -> int | None:
        return None if self.total is None else self.total - self.remaining


def _group(raw: str) -> str:
    parts, start = [], 0
    for size in GROUPS:
        parts.append(raw[start : start + size])
        start += size
    return "-".join(parts)


def generate_codes(count: int, rng: RandomSource = _SYSTEM_RANDOM) -> list[str]:
    """``count`` distinct codes like ``ABCD-EFGH-JKLMN`` (66 bits each), for display to the user.

    ``rng`` must be a CSPRNG in production (the default, ``secrets.SystemRandom()``).
    """
    if isinstance(count, bool) or not isinstance(count, int):
        raise CredentialFormatError(f"number of backup codes must be an integer, got {count!r}")
    if not MIN_CODES <= count <= MAX_CODES:
        raise CredentialFormatError(
            f"number of backup codes must be between {MIN_CODES} and {MAX_CODES}, got {count}"
        )
    codes: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(codes) < count:
        attempts += 1
        if attempts > count * 10:
            raise RuntimeError("the random source keeps repeating itself; refusing to make backup codes")
        raw = "".join(rng.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if raw not in seen:
            seen.add(raw)
            codes.append(_group(raw))
    return codes


def normalize_code(code: str) -> str:
    """What Keycloak's form does to the typed code before hashing it: remove every ``-``, nothing else."""
    return code.replace("-", "")


def hash_code(code: str) -> str:
    """``encodedHashedValue`` for ``code``: Base64(SHA-512(UTF-8(code without dashes))), as Keycloak 26.7."""
    if not isinstance(code, str):
        raise CredentialFormatError(f"backup code must be a string, got {type(code).__name__}")
    normalized = normalize_code(code)
    if not normalized:
        raise CredentialFormatError("backup code is empty")
    digest = hashlib.sha512(normalized.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def _dumps(value: object) -> str:
    # Jackson writes compact JSON; key order below follows Keycloak's own serialization.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def credential_data_json(total: int, remaining: int) -> str:
    """credentialData exactly as Keycloak 26.7.3 writes it."""
    return _dumps({"algorithm": HASH_ALGORITHM, "totalCodes": total, "remainingCodes": remaining})


def credential_representation(codes: Sequence[str], created_ms: int, label: str | None) -> dict[str, Any]:
    """A CredentialRepresentation for ``POST /users`` / ``PUT /users/{id}`` (``credentials[]``).

    Codes are numbered 1..N in the given order; Keycloak asks for them in that order. Storing it
    replaces the user's previous set (Keycloak's provider deletes the old one first).
    """
    if isinstance(codes, str) or not isinstance(codes, Sequence):
        raise CredentialFormatError("codes must be a list of strings")
    if not 1 <= len(codes) <= MAX_CODES:
        raise CredentialFormatError(f"a backup code set holds 1 to {MAX_CODES} codes, got {len(codes)}")
    normalized: list[str] = []
    for i, code in enumerate(codes, start=1):
        if not isinstance(code, str) or not _STORABLE_CODE.fullmatch(normalize_code(code)):
            raise CredentialFormatError(
                f"backup code #{i} must hold letters and digits (dashes allowed), got {code!r}"
            )
        normalized.append(normalize_code(code))
    if len(set(normalized)) != len(normalized):
        raise CredentialFormatError("backup codes must be distinct")
    if isinstance(created_ms, bool) or not isinstance(created_ms, int) or created_ms < 0:
        raise CredentialFormatError(
            f"created_ms must be a non-negative integer (epoch ms), got {created_ms!r}"
        )
    if label is not None and not isinstance(label, str):
        raise CredentialFormatError("label must be a string or None")

    secret = {
        "codes": [{"number": i, "encodedHashedValue": hash_code(c)} for i, c in enumerate(normalized, 1)]
    }
    rep: dict[str, Any] = {
        "type": CREDENTIAL_TYPE,
        "createdDate": created_ms,
        "secretData": _dumps(secret),
        "credentialData": credential_data_json(len(normalized), len(normalized)),
    }
    if label is not None:
        rep["userLabel"] = label
    return rep


def _json_object(value: object, what: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise CredentialFormatError(f"{what} is not valid JSON: {e.msg}") from None
    if not isinstance(value, dict):
        raise CredentialFormatError(f"{what} must be a JSON object")
    return value


def _count(data: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        if key in data and data[key] is not None:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise CredentialFormatError(f"credentialData.{key} must be a non-negative integer, got {v!r}")
            return v
    return None


def parse_credential(cred: Mapping[str, Any]) -> CodesInfo:
    """Read a ``recovery-authn-codes`` credential as ``GET /users/{id}/credentials`` returns it.

    Accepts the 26.2+ credentialData and the older ones (``RS512``/``hashIterations``, with or without
    ``totalCodes``). If secretData is present (our own representation, or a realm export) it is used too.
    Unknown credentialData keys are ignored here (a later Keycloak may add some); we never write any.
    """
    if not isinstance(cred, Mapping):
        raise CredentialFormatError("credential must be a JSON object")
    if cred.get("type") != CREDENTIAL_TYPE:
        raise CredentialFormatError(f"not a {CREDENTIAL_TYPE} credential: type {cred.get('type')!r}")
    if cred.get("credentialData") is None:
        raise CredentialFormatError("credential has no credentialData")
    data = _json_object(cred["credentialData"], "credentialData")
    algorithm = data.get("algorithm")
    if algorithm not in (HASH_ALGORITHM, LEGACY_HASH_ALGORITHM):
        raise CredentialFormatError(f"unsupported backup-code hash algorithm {algorithm!r}")
    legacy = algorithm == LEGACY_HASH_ALGORITHM or data.get("hashIterations") is not None

    remaining = _count(data, "remainingCodes", "remaining")
    total = _count(data, "totalCodes", "total")
    next_number: int | None = None

    secret_raw = cred.get("secretData")
    if secret_raw:  # stripped (absent) in the admin API's answer
        secret = _json_object(secret_raw, "secretData")
        entries = secret.get("codes")
        if not isinstance(entries, list) or not all(
            isinstance(e, dict)
            and isinstance(e.get("number"), int)
            and isinstance(e.get("encodedHashedValue"), str)
            for e in entries
        ):
            raise CredentialFormatError(
                'secretData must be {"codes":[{"number":N,"encodedHashedValue":"..."}]}'
            )
        remaining = len(entries)
        next_number = entries[0]["number"] if entries else None

    if remaining is None:
        raise CredentialFormatError("credentialData has no remainingCodes")
    if total == 0:
        # A pre-totalCodes credential re-written by Keycloak 26.2+ (after a code is used) says 0.
        total = None
    if total is not None and remaining > total:
        raise CredentialFormatError(f"credentialData says {remaining} codes remain of {total}")
    if next_number is None and remaining > 0 and total is not None:
        # Keycloak numbers the codes 1..total and always asks for the lowest one left.
        next_number = total - remaining + 1

    created = cred.get("createdDate")
    if created is not None and (isinstance(created, bool) or not isinstance(created, int)):
        raise CredentialFormatError(f"createdDate must be epoch milliseconds, got {created!r}")
    label = cred.get("userLabel")
    cid = cred.get("id")
    return CodesInfo(
        total=total,
        remaining=remaining,
        created_ms=created,
        next_number=next_number,
        credential_id=cid if isinstance(cid, str) else None,
        label=label if isinstance(label, str) else None,
        algorithm=str(algorithm),
        legacy_format=legacy,
    )
