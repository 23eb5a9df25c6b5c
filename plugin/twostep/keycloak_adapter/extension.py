"""The provider's admin REST extension: `/admin/realms/{realm}/twostep/...` (docs/provider.md).

Each call is one change Keycloak makes in one transaction, after its own permission check for the
user acted on (`AdminPermissionEvaluator`): so the caller's Keycloak permissions decide, whether the
caller is the CLI's account or the admin signed in to the pages. Errors carry the server's one-line
reason, named by meaning (400 BadRequest, 403 Forbidden, 404 NotFound, 409 Conflict)."""

from __future__ import annotations

from typing import Any

from requests import Response

from ..errors import BadRequest, Conflict, Forbidden, NotFound, TwostepError
from .connection import JSON, Connection, q, translate

BYPASS_ACTIONS = ("grant", "extend", "revoke")


def _reason(resp: Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        return str(body.get("errorMessage") or body.get("error") or "")
    return ""


class ExtensionCalls(Connection):
    """/twostep/..."""

    def _extension(self, path: str, body: JSON, what: str, method: str = "POST",
                   params: dict[str, Any] | None = None) -> JSON:
        resp = self._send(method, f"/realms/{q(self.realm)}/twostep{path}", what, params, body)
        if resp.status_code < 400:
            return resp.json() if resp.content else {}
        reason = _reason(resp)
        if resp.status_code == 404 and ("matching" in reason.lower() or not reason):
            raise NotFound(f"{what}: the twostep provider's admin extension is not loaded in Keycloak "
                           "(install the provider JAR of this version; see docs/provider.md)")
        known: dict[int, type[TwostepError]] = {400: BadRequest, 403: Forbidden, 404: NotFound, 409: Conflict}
        if resp.status_code in known and reason:
            raise known[resp.status_code](reason)
        raise translate(resp, what)

    def bypass_change(self, user_id: str, action: str, body: dict[str, Any]) -> JSON:
        """Grant, extend or revoke a user's bypass through the provider (record, index entry, sessions
        and admin event in one transaction). Never retried: a POST that timed out may have been applied."""
        if action not in BYPASS_ACTIONS:
            raise ValueError(action)
        return self._extension(f"/users/{q(user_id)}/bypass/{action}", body, f"bypass {action} of user {user_id!r}")

    def extension_policy(self) -> str | None:
        """The realm's `twostep.policy` attribute as stored (None: none), through the extension: for an
        admin who may query users but not view the realm (Keycloak then leaves the realm's attributes
        out of its representation)."""
        answer = self._extension("/policy", None, "the twostep policy", method="GET")
        raw = answer.get("policy") if isinstance(answer, dict) else None
        return raw if isinstance(raw, str) else None

    def admin_access(self) -> JSON:
        """What the caller may do with the realm's users, as Keycloak's own permissions say:
        `{"manage": "all"|"some"|"none", "view": ..., "query": bool, "fine_grained": bool}` ("some": at
        least one user or one group's members under fine-grained admin permissions v2)."""
        return self._extension("/access", None, "what you may do in this realm", method="GET")

    def help_queue_visible(self) -> list[str]:
        """Ids of the users with an open help request whom the caller may view (Keycloak's permissions
        decide): the queue of an admin who may not read the help index group itself."""
        answer = self._extension("/help", None, "the help requests you may see", method="GET")
        users = answer.get("users") if isinstance(answer, dict) else None
        return [str(u) for u in users] if isinstance(users, list) else []

    def help_answer(self, user_id: str, answer: str, body: dict[str, Any]) -> JSON:
        """Answer a help request (`grant`: a bypass that removes the lost device and ends the
        sessions; `dismiss`) and close it, in one transaction. Never retried."""
        if answer not in ("grant", "dismiss"):
            raise ValueError(answer)
        return self._extension(f"/users/{q(user_id)}/help/{answer}", body, f"help {answer} of user {user_id!r}")

    def otp_reset(self, user_id: str, body: dict[str, Any]) -> JSON:
        """Lost phone: require a new device, disable every OTP device (restorable: `otp_restore`), end every
        session, in one transaction."""
        return self._extension(f"/users/{q(user_id)}/otp/reset", body, f"reset the OTP devices of user {user_id!r}")

    def otp_restore(self, user_id: str, body: dict[str, Any]) -> JSON:
        """A found phone: the user's disabled OTP devices back as they were, CONFIGURE_TOTP no longer
        asked, in one transaction (409 when there is none to restore)."""
        return self._extension(f"/users/{q(user_id)}/otp/restore", body,
                               f"restore the OTP devices of user {user_id!r}")

    def store_codes(self, user_id: str, body: dict[str, Any]) -> JSON:
        """Replace the user's backup codes by the credential in `body` (hashes only) with its provenance,
        OTP devices kept first, in one transaction."""
        return self._extension(f"/users/{q(user_id)}/codes", body, f"store the backup codes of user {user_id!r}")

    def credential_types(self, user_ids: list[str]) -> dict[str, list[str]]:
        """The credential types of up to 100 users in one call (types only, no credential data): user
        id -> types. A user the caller may not view, or who is gone, is not in the answer."""
        if not user_ids:
            return {}
        answer = self._extension("/users/credential-types", None, "the credential types of a page of users",
                                 method="GET", params={"id": list(user_ids)})
        if not isinstance(answer, dict):
            return {}
        return {str(k): [str(t) for t in v] for k, v in answer.items() if isinstance(v, list)}

    def bypass_records(self, user_ids: list[str]) -> dict[str, list[JSON]]:
        """The `twostep-bypass` credentials of up to 100 users in one call, as `GET /users/{id}/credentials`
        shows them (type, credentialData, createdDate; no secret): user id -> credentials, [] for none. A
        user the caller may not view, or who is gone, is not in the answer. For the users list: a delegated
        admin may not read the expiry index's groups, yet sees the bypass of whom they may view."""
        if not user_ids:
            return {}
        answer = self._extension("/users/bypass-records", None, "the bypass records of a page of users",
                                 method="GET", params={"id": list(user_ids)})
        if not isinstance(answer, dict):
            return {}
        return {str(k): [c for c in v if isinstance(c, dict)] for k, v in answer.items() if isinstance(v, list)}
