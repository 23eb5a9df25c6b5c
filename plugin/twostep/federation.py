"""User federation (LDAP / Active Directory) settings that would stop twostep from working.

Read in Keycloak's source (federation/ldap, model/storage-private) and confirmed on a real server
with a real OpenLDAP directory (tests/test_ldap_federation.py, tests/test_federation_checks.py):

- edit mode READ_ONLY: `LDAPStorageProvider.decorateUserProfile` adds an always-false write
  condition to every user-profile attribute of the provider's users, so an admin PUT of a user
  attribute answers 400 `error-user-attribute-read-only`. Credentials (Keycloak's own database),
  required actions and local group memberships are still accepted (`ReadonlyLDAPUserModelDelegate`
  guards only username, names, e-mail and attributes). Fallback mode keeps the bypass record and the
  codes' provenance in user attributes: it cannot work there. Provider mode keeps them in credentials.
- import off: the users exist only in memory (`InMemoryUserAdapter`) behind a
  `ReadOnlyUserModelDelegate` (READ_ONLY) or `LDAPWritesOnlyUserModelDelegate` (WRITABLE): credentials
  are still stored (federated storage), but required actions are refused ("The user is read-only")
  and joining a group fails with HTTP 500. Enrollment, device reset and the bypass index need both.
  (Keycloak itself refuses UNSYNCED without import.)
- provider disabled: `UserStorageManager.validateFederatedUser` returns its users as a
  `ReadOnlyUserModelDelegate` that is disabled: they cannot sign in and nothing can be written.
- directory unreachable: its users become `StorageUnavailableUserModelDelegate` ("The user storage
  provider ... is currently unavailable"): read-only, and password sign-in fails.
- a `group-ldap-mapper` in mode LDAP_ONLY manages every group under its groups path in the
  directory (`LDAPGroupMappingsUserDelegate.joinGroup` -> `addGroupMappingInLDAP`, which also creates
  the group in the directory); with groups path "/" that includes the top-level bypass index group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Forbidden, TwostepError
from .keycloak_adapter import KeycloakClient
from .policy import BYPASS_INDEX_GROUP, STORE_CREDENTIAL

USER_STORAGE = "org.keycloak.storage.UserStorageProvider"
LDAP_MAPPER = "org.keycloak.storage.ldap.mappers.LDAPStorageMapper"


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _first(config: dict[str, Any], key: str, default: str = "") -> str:
    value = (config or {}).get(key)
    if isinstance(value, list):
        return str(value[0]) if value else default
    return default if value is None else str(value)


def _true(config: dict[str, Any], key: str, default: bool) -> bool:
    value = _first(config, key, "true" if default else "false").strip().lower()
    return value == "true"


def assess(components: list[dict[str, Any]], mappers: dict[str, list[dict[str, Any]]], record_store: str,
           realm: str) -> list[Finding]:
    """Pure: findings for each LDAP federation, from its component and its mappers' representations.
    `record_store` is the policy's (`credential` = provider mode, `attributes` = fallback mode)."""
    out: list[Finding] = []
    setup_fix = f"install the twostep provider JAR into Keycloak's providers/ (docs/provider.md), restart " \
                f"Keycloak, then run `twostep setup --realm {realm}`"
    for comp in components:
        if comp.get("providerId") != "ldap":
            continue
        cfg = comp.get("config") or {}
        label = f"federation {comp.get('name') or comp.get('id')!r}"
        where = f"admin console: User federation > {comp.get('name') or comp.get('id')}"
        enabled = _true(cfg, "enabled", True)
        out.append(Finding(
            f"{label} enabled", enabled,
            "enabled" if enabled else
            "disabled: Keycloak treats its users as disabled and read-only; they cannot sign in and twostep "
            "can write nothing for them",
            f"enable it ({where} > Enabled) or remove it"))
        imported = _true(cfg, "importEnabled", True)
        out.append(Finding(
            f"{label} import", imported,
            "users imported into Keycloak's database" if imported else
            "import is off: Keycloak keeps no local copy of these users and refuses their required actions "
            "(400 'The user is read-only') and group memberships (500), so enrollment, device reset and the "
            "bypass index cannot be written",
            f"turn 'Import users' on ({where}); users are imported at their next sign-in or search"))
        mode = _first(cfg, "editMode", "?")
        if mode == "READ_ONLY" and record_store != STORE_CREDENTIAL:
            out.append(Finding(
                f"{label} edit mode", False,
                "READ_ONLY while twostep runs in fallback mode (records in user attributes): Keycloak makes every "
                "user attribute read-only for these users, so bypasses and the provenance of admin-made backup "
                "codes cannot be written (400 error-user-attribute-read-only)",
                setup_fix))
        else:
            out.append(Finding(
                f"{label} edit mode", True,
                f"{mode}: records are credentials in Keycloak's own database" if record_store == STORE_CREDENTIAL
                else f"{mode}: user attributes are stored in Keycloak's database"))
        if record_store == STORE_CREDENTIAL:
            # (bypass grant refuses such a user too: records.refuse_directory_write)
            blocking = [m for m in mappers.get(str(comp.get("id")), []) if manages_index_group(m)]
            out.append(Finding(
                f"{label} group mappers", not blocking,
                "none keeps the bypass index group in the directory" if not blocking else
                ", ".join(repr(m.get("name")) for m in blocking) +
                f": mode LDAP_ONLY with groups path '/', so adding a user to the top-level group "
                f"{BYPASS_INDEX_GROUP!r} (the bypass index) is written to the directory, or refused by it",
                f"set the mapper's Groups Path to a subgroup such as /ldap, or its mode to READ_ONLY or IMPORT "
                f"({where} > Mappers)"))
    return out


def manages_index_group(mapper: dict[str, Any]) -> bool:
    if mapper.get("providerId") != "group-ldap-mapper":
        return False
    cfg = mapper.get("config") or {}
    path = _first(cfg, "groups.path", "/").strip() or "/"
    return _first(cfg, "mode", "READ_ONLY") == "LDAP_ONLY" and path in ("/", f"/{BYPASS_INDEX_GROUP}")


def read(kc: KeycloakClient) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The realm's user-storage components and, for each LDAP one, its mappers."""
    comps = kc.components("list user federations", type=USER_STORAGE)
    mappers: dict[str, list[dict[str, Any]]] = {}
    for c in comps:
        if c.get("providerId") == "ldap":
            mappers[str(c["id"])] = kc.components("list federation mappers", parent=c["id"], type=LDAP_MAPPER)
    return comps, mappers


def federation_findings(kc: KeycloakClient, record_store: str) -> list[Finding]:
    comps, mappers = read(kc)
    return assess(comps, mappers, record_store, kc.realm)


def reachability(kc: KeycloakClient, components: list[dict[str, Any]]) -> list[Finding]:
    """Doctor only: ask Keycloak to connect and bind to each enabled LDAP federation, with its stored
    bind credential (Keycloak's own test endpoint; the secret never leaves the server)."""
    out: list[Finding] = []
    for comp in components:
        cfg = comp.get("config") or {}
        if comp.get("providerId") != "ldap" or not _true(cfg, "enabled", True):
            continue
        label = f"federation {comp.get('name') or comp.get('id')!r} reachable"
        auth = _first(cfg, "authType", "simple")
        # An anonymous federation (authType none) has no bind to test: the connection only.
        body = {"action": "testAuthentication" if auth == "simple" else "testConnection", "componentId": comp["id"],
                "connectionUrl": _first(cfg, "connectionUrl"), "bindDn": _first(cfg, "bindDn"),
                "bindCredential": _first(cfg, "bindCredential"), "authType": auth,
                "useTruststoreSpi": _first(cfg, "useTruststoreSpi", "always"),
                "startTls": _first(cfg, "startTls", "false"), "connectionTimeout": _first(cfg, "connectionTimeout")}
        try:
            kc.test_ldap_connection(body, str(comp.get("name")))
        except Forbidden:
            out.append(Finding(label, True, "not checked with these credentials (needs manage-realm)"))
        except TwostepError as exc:
            out.append(Finding(
                label, False,
                f"Keycloak cannot connect and bind to {_first(cfg, 'connectionUrl')} ({exc}): its users are "
                "read-only ('storage provider unavailable') and cannot sign in with their password",
                "check the federation's Connection URL, Bind DN and credential, and that the directory is up"))
        else:
            out.append(Finding(label, True, f"connected and bound to {_first(cfg, 'connectionUrl')}"))
    return out
