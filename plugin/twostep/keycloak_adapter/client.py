"""KeycloakClient: the connection with every per-resource call, the one object services are given."""

from __future__ import annotations

from .authentication import AuthenticationCalls
from .clients import ClientCalls
from .extension import ExtensionCalls
from .groups import GroupCalls
from .realm import RealmCalls
from .roles import RoleCalls
from .users import UserCalls


class KeycloakClient(RealmCalls, AuthenticationCalls, ClientCalls, UserCalls, GroupCalls, RoleCalls, ExtensionCalls):
    """Admin REST access to one realm (connection.Connection), with the calls of each resource."""
