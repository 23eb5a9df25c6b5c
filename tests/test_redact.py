"""One rule for secret-named fields: what the logs mask, the audit trail drops (unit)."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from twostep import logs
from twostep.audit import MemorySink, event
from twostep.redact import MASK

NAMES = ["client_secret", "password", "admin_passwd", "otp_code", "seed", "access_token", "credential_value",
         "Authorization", "codes_count", "codes_remaining", "username", "reason", "until"]
SECRET = {"client_secret", "password", "admin_passwd", "otp_code", "seed", "access_token", "credential_value",
          "Authorization"}


def test_the_logs_mask_exactly_what_the_audit_drops() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("twostep.test_redact")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.SecretFilter())
    logger.addHandler(handler)
    try:
        logger.warning("probe", extra={"fields": dict.fromkeys(NAMES, "v")})
    finally:
        logger.removeHandler(handler)
    logged = json.loads(stream.getvalue())
    masked = {n for n in NAMES if logged[n] == MASK}

    sink = MemorySink([])
    sink.write(event("probe", realm="r", actor="a", now=datetime(2026, 1, 1, tzinfo=UTC), **dict.fromkeys(NAMES, "v")))
    dropped = {n for n in NAMES if n not in sink.events[0]}

    assert masked == SECRET
    assert dropped == SECRET
