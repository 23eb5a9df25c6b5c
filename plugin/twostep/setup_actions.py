"""Setup's plan as data: each change is a value (one kind, a target, a payload) that compares and
prints; `realm_setup.apply` turns each kind into its requests, deciding nothing new."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

Secret = Callable[[str, str], None]  # (client id, its new secret): shown once or written to a file


class Kind(Enum):
    UPDATE_REALM = "update realm"
    UPDATE_REQUIRED_ACTION = "update required action"
    UPDATE_USER_PROFILE = "update user profile"
    DELETE_FLOW = "delete flow"
    CREATE_FLOW = "create flow"
    REBUILD_FLOW = "rebuild flow"
    CREATE_SERVICE_CLIENT = "create service client"
    SET_SERVICE_ROLES = "set service roles"
    CREATE_WEB_CLIENT = "create web client"
    UPDATE_WEB_CLIENT = "update web client"
    SET_WEB_CLIENT_ROLES = "set web client roles"
    REQUIRE_OTP_SETUP = "require OTP setup"
    BIND_CLIENT_FLOW = "bind client flow override"
    CREATE_NEW_FLOW = "create new flow"
    BIND_IDP_FLOWS = "bind identity provider flows"
    ADD_SCOPE_MAPPER = "add client scope mapper"


@dataclass(frozen=True)
class Action:
    """One change: `kind` says what, `target` on which object, `payload` with which values; `text`
    says it for --dry-run and the report."""

    kind: Kind
    target: str
    payload: Any
    text: str

    def __str__(self) -> str:
        return self.text
