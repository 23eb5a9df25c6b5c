"""The audit trail: one JSON line per 2FA event (who, whom, what, when, until, why, outcome).

Events never carry a secret: the sink drops any field whose name says it is one (`redact.py`, the
same rule as the logs), as a last guard.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from .policy import utc_iso
from .redact import scrub


class EndKind(StrEnum):
    """How a bypass ended: `bypass_end.EndPlan.kind`, the audit event it writes (`audit_action`)
    and, for the sync's ends, the metrics counter it adds to (`metrics.record_action`)."""

    REVOKE = "revoke"
    EXPIRE = "expire"
    END_EARLY = "end_early"
    DRIFT = "drift"

    @property
    def audit_action(self) -> str:
        return "drift.repair" if self is EndKind.DRIFT else f"bypass.{self.value}"


class AuditSink(Protocol):
    def write(self, event: dict[str, Any]) -> None: ...


@dataclass
class StreamSink:
    """Without an audit file the events go to stderr (the journal under systemd, the container
    log): stdout carries only the command's own output, so `codes generate > sheet.txt` or
    `bypass list --json | jq` never mixes audit lines into it."""

    stream: Any = None

    def write(self, event: dict[str, Any]) -> None:
        out = self.stream or sys.stderr
        out.write(json.dumps(scrub(event), sort_keys=True, default=str) + "\n")
        out.flush()


class FileSink:
    """Append-only; one write() per line so concurrent writers (two sync hosts) don't interleave."""

    _lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, event: dict[str, Any]) -> None:
        line = (json.dumps(scrub(event), sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


@dataclass
class MemorySink:
    events: list[dict[str, Any]]

    def write(self, event: dict[str, Any]) -> None:
        self.events.append(scrub(event))


def sink_for(audit_file: str | None, stream: Any = None) -> AuditSink:
    if audit_file and audit_file != "-":
        return FileSink(audit_file)
    return StreamSink(stream)


def event(action: str, *, realm: str, actor: str, now: datetime, user_id: str | None = None,
          username: str | None = None, outcome: str = "ok", **details: Any) -> dict[str, Any]:
    """action: bypass.grant, bypass.extend, bypass.revoke, bypass.expire, bypass.end_early,
    bypass.break_glass, drift.repair, codes.generate, codes.revoke, otp.reset, enforce, notify..."""
    return {"ts": utc_iso(now), "event": action, "realm": realm, "actor": actor, "user_id": user_id,
            "username": username, "outcome": outcome, **{k: v for k, v in details.items() if v is not None}}
