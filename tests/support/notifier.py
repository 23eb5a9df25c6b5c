"""A Notifier for unit tests: remembers what it was asked to tell, sends nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twostep.audit import AuditSink
from twostep.keycloak_adapter import JSON, KeycloakClient


@dataclass
class FakeNotifier:
    outcome: str = "sent"
    fail_with: Exception | None = None
    told: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)  # (username, kind, details, actor)

    def notify(self, kc: KeycloakClient, user: JSON, kind: str, details: dict[str, Any], audit_sink: AuditSink,
               actor: str, now: datetime) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.told.append((str(user.get("username")), kind, dict(details), actor))
        return self.outcome
