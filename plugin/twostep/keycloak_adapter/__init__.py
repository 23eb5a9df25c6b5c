"""The only way to Keycloak's admin REST API: no module outside this package builds a REST path.

`connection` signs in, sends one request, counts, retries what is safe and names errors by meaning;
one module per resource (realm, authentication, clients, users, groups, roles) holds its calls;
`KeycloakClient` composes them.
"""

from .client import KeycloakClient
from .connection import JSON, CallCounter, Connection, path_template, q, translate

__all__ = ["JSON", "CallCounter", "Connection", "KeycloakClient", "path_template", "q", "translate"]
