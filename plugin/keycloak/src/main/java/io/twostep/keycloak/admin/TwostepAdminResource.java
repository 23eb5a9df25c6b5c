package io.twostep.keycloak.admin;

import static io.twostep.keycloak.admin.AdminActor.extra;
import static io.twostep.keycloak.admin.RequestBody.bad;
import static io.twostep.keycloak.admin.RequestBody.blankToNull;
import static io.twostep.keycloak.admin.RequestBody.flag;
import static io.twostep.keycloak.admin.RequestBody.number;
import static io.twostep.keycloak.admin.RequestBody.optionalFlag;
import static io.twostep.keycloak.admin.RequestBody.text;

import io.twostep.keycloak.DisabledOtp;
import io.twostep.keycloak.HelpRequestAuthenticator;
import io.twostep.keycloak.HelpRequestCredentialProvider;
import io.twostep.keycloak.TwostepAdminEvents;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.TwostepDecision;
import io.twostep.keycloak.UserRowLock;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.ErrorResponse;
import org.keycloak.services.resources.admin.AdminEventBuilder;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;
import org.keycloak.storage.ReadOnlyException;

/**
 * {@code /admin/realms/{realm}/twostep/...}: every change twostep makes to a user, each one Keycloak
 * transaction (docs/provider.md). The order is the same for every endpoint: the user (404), Keycloak's
 * permission to manage that user ({@code AdminPermissionEvaluator}: realm-management roles or
 * fine-grained admin permissions; 403), the user's row locked and the user read afresh
 * ({@link UserRowLock}), the pure rules ({@link BypassRules}: nobody acts on themselves, a user holding
 * realm-management roles only by an admin holding them too, the policy's bypass maximum by Keycloak's
 * clock), then the writes ({@link UserWrites}) and one admin event ({@link TwostepAdminEvents}). Any
 * failure after the first write marks the transaction rollback-only: all or nothing. Bodies are read by
 * {@link RequestBody}, the acting admin is an {@link AdminActor}, a bypass change a {@link BypassChange}.
 */
public class TwostepAdminResource {

    private final KeycloakSession session;
    private final RealmModel realm;
    private final AdminPermissionEvaluator auth;
    private final LongSupplier clock;
    private final UserWrites writes;
    private final AdminActor actor;
    private final BypassChange bypasses;

    public TwostepAdminResource(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth,
                                AdminEventBuilder events, LongSupplier clock) {
        this.session = session;
        this.realm = realm;
        this.auth = auth;
        this.clock = clock;
        this.writes = new UserWrites(session, realm, clock);
        this.actor = new AdminActor(realm, auth, events);
        this.bypasses = new BypassChange(session, realm, clock, writes, actor);
    }

    /**
     * The realm's policy record as stored (or null), for an admin who may query users but not view the
     * realm (a help desk with manage-users): Keycloak hands such an admin the realm without its
     * attributes, and the CLI and the pages need the record store and the bypass maximum.
     */
    @GET
    @Path("policy")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> policy() {
        if (!(auth.users().canQuery() || auth.users().canView() || auth.realm().canViewRealm())) {
            throw ErrorResponse.error("not allowed to read the twostep policy of realm " + realm.getName(),
                    Response.Status.FORBIDDEN);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("policy", realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE));
        out.put("provider", Boolean.TRUE);
        return out;
    }

    /**
     * The credential types of up to 100 users ({@code ?id=..&id=..}): {@code {id: [type, ...]}}, users
     * the caller may not view left out ({@link CredentialTypes}). For the exports: one call per page.
     */
    @GET
    @Path("users/credential-types")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, List<String>> credentialTypes(@QueryParam("id") List<String> ids) {
        auth.users().requireQuery();
        return CredentialTypes.of(session, realm, ids, user -> auth.users().canView(user));
    }

    /** The bypass records of up to 100 users the caller may view ({@link BypassRecords}): the users list. */
    @GET
    @Path("users/bypass-records")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, List<Map<String, Object>>> bypassRecords(@QueryParam("id") List<String> ids) {
        return BypassRecords.of(session, realm, ids, user -> auth.users().canView(user));
    }

    /**
     * What the caller may do with the realm's users, as Keycloak's permissions say ({@link AdminAccess}):
     * the admin pages let in whoever may manage at least someone, whatever the role or permission.
     */
    @GET
    @Path("access")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> access() {
        return AdminAccess.of(session, realm, auth);
    }

    /** The users with an open help request whom the caller may view ({@link AdminAccess#helpQueue}). */
    @GET
    @Path("help")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> helpQueue() {
        return AdminAccess.helpQueue(session, realm, auth);
    }

    /** Grant, extend or revoke a bypass: the record, its index entry, the sessions it ends. */
    @POST
    @Path("users/{id}/bypass/{action}")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> bypass(@PathParam("id") String id, @PathParam("action") String action,
                                      Map<String, Object> body) {
        BypassRules.Action act = switch (action) {
            case "grant" -> BypassRules.Action.GRANT;
            case "extend" -> BypassRules.Action.EXTEND;
            case "revoke" -> BypassRules.Action.REVOKE;
            default -> throw ErrorResponse.error("unknown action " + action, Response.Status.NOT_FOUND);
        };
        Map<String, Object> in = body == null ? Map.of() : body;
        BypassRules.Request req = new BypassRules.Request(act, number(in, "seconds"), text(in, "until"),
                text(in, "reason"), text(in, "by"), flag(in, "reset_device"), optionalFlag(in, "end_sessions"),
                flag(in, "break_glass"));
        UserModel user = lockedTarget(id);
        PassGrant.Prepared prepared = bypasses.prepare(user, bypasses.decide(user, req), in);
        return inOneTransaction(() -> bypasses.apply(user, req, prepared, null));
    }

    /**
     * Answer the user's help request ("I lost my phone"): {@code grant} (a bypass that also removes the
     * lost device and ends the sessions) or {@code dismiss} (reason required); either closes the request.
     * {@code asked_at}, when given, must be the open request's: an answer to a request answered meanwhile
     * is refused (409), not applied to a newer one.
     */
    @POST
    @Path("users/{id}/help/{answer}")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> help(@PathParam("id") String id, @PathParam("answer") String answer,
                                    Map<String, Object> body) {
        if (!answer.equals("grant") && !answer.equals("dismiss")) {
            throw ErrorResponse.error("unknown answer " + answer, Response.Status.NOT_FOUND);
        }
        Map<String, Object> in = body == null ? Map.of() : body;
        String expected = text(in, "asked_at");
        Long seconds = number(in, "seconds");
        Asked asked = asked(id, in);
        UserModel user = asked.user();
        String by = asked.by();
        List<CredentialModel> open = UserWrites.stored(user, HelpRequestCredentialProvider.TYPE);
        GroupModel index = AdminAccess.unfiltered(session, () -> HelpRequestAuthenticator.indexGroup(session, realm,
                false));
        boolean member = index != null && user.isMemberOf(index);
        if (open.isEmpty() && !member) {
            throw ErrorResponse.error(user.getUsername() + " has no open help request (already answered, or never "
                    + "asked)", Response.Status.CONFLICT);
        }
        Map<String, String> data = open.isEmpty() ? null : TwostepCondition.parseRecord(open.get(0).getCredentialData());
        String askedAt = data == null ? "" : data.getOrDefault("asked_at", "");
        if (expected != null && !expected.equals(askedAt)) {
            throw ErrorResponse.error("the help request of " + user.getUsername() + " changed (asked " + askedAt
                    + ", answering " + expected + "): reload and try again", Response.Status.CONFLICT);
        }
        if (answer.equals("dismiss")) {
            String why = asked.reason();
            if (why == null || blankToNull(by) == null) {
                throw bad("a reason and who dismisses it (by) are required to dismiss a help request");
            }
            return inOneTransaction(() -> {
                writes.closeHelpRequest(user);
                Map<String, Object> out = result("help.dismiss", user);
                out.put("asked_at", askedAt);
                actor.event("help.dismiss", user, null, why, extra("by", by.strip(), "asked_at", askedAt));
                return out;
            });
        }
        if (data == null) {
            throw ErrorResponse.error("the help request of " + user.getUsername() + " is damaged: dismiss it and "
                    + "grant a bypass with a device reset if needed", Response.Status.CONFLICT);
        }
        String helpReason = "help request of " + askedAt + ": lost device";
        BypassRules.Request req = new BypassRules.Request(BypassRules.Action.GRANT, seconds, null, helpReason, by,
                true, null, false);
        BypassRules.Decision decision = bypasses.decide(user, req);
        Map<String, String> current = BypassChange.currentRecord(user);
        if (decision.status() == 409 && current != null && helpReason.equals(current.get("reason"))) {
            // An earlier answer to this very request (an older twostep, not one transaction) granted its
            // bypass and stopped before closing the request: finish it instead of refusing it.
            return inOneTransaction(() -> {
                int removed = DisabledOtp.disable(session, realm, user, by, clock.getAsLong());
                Map<String, Object> out = result("help.grant", user);
                out.put("until", current.get("until"));
                out.put("asked_at", askedAt);
                out.put("devices_removed", removed);
                out.put("sessions_ended", removed > 0 ? writes.endSessions(user, BypassRules.Sessions.ALL, 0, 0) : 0);
                out.put("resumed", Boolean.TRUE);
                writes.closeHelpRequest(user);
                actor.event("help.grant", user, current.get("until"), helpReason, extra("by", blankToNull(by),
                        "asked_at", askedAt, "devices_removed", removed, "devices_disabled", removed, "resumed",
                        Boolean.TRUE));
                return out;
            });
        }
        PassGrant.Prepared prepared = bypasses.prepare(user, decision, in);
        return inOneTransaction(() -> bypasses.apply(user, req, prepared, askedAt));
    }

    /** Lost phone: every OTP device goes, a new one is required at the next sign-in, every session ends. */
    @POST
    @Path("users/{id}/otp/reset")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> resetOtp(@PathParam("id") String id, Map<String, Object> body) {
        Asked asked = asked(id, body);
        UserModel user = asked.user();
        return inOneTransaction(() -> {
            boolean added = user.getRequiredActionsStream().noneMatch(TwostepDecision.CONFIGURE_TOTP::equals);
            try {
                user.addRequiredAction(TwostepDecision.CONFIGURE_TOTP); // first: a read-only user changes nothing
            } catch (ReadOnlyException e) {
                throw bad(user.getUsername() + " is read-only in Keycloak (a federation without import): a new "
                        + "device cannot be required, so no device is removed");
            }
            Map<String, Object> out = result("otp.reset", user);
            int disabled = DisabledOtp.disable(session, realm, user, asked.by(), clock.getAsLong());
            out.put("devices_removed", disabled);
            out.put("devices_disabled", disabled);
            out.put("sessions_ended", writes.endSessions(user, BypassRules.Sessions.ALL, 0, 0));
            out.put("required_action_added", added);
            actor.event("otp.reset", user, null, asked.reason(), extra("by", blankToNull(asked.by()),
                    "devices_removed", disabled, "devices_disabled", disabled, "sessions_ended",
                    out.get("sessions_ended")));
            return out;
        });
    }

    /**
     * A found phone: the user's disabled OTP devices come back as they were (the same secret: its codes
     * work again), {@code CONFIGURE_TOTP} is no longer asked. 409 when there is none (never disabled,
     * purged after 30 days, or the user enrolled a new device meanwhile).
     */
    @POST
    @Path("users/{id}/otp/restore")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> restoreOtp(@PathParam("id") String id, Map<String, Object> body) {
        Asked asked = asked(id, body);
        UserModel user = asked.user();
        long now = clock.getAsLong();
        if (DisabledOtp.restorable(user, now) == 0) {
            // Refused before any write (what is due is purged at the next sign-in or by the task).
            throw ErrorResponse.error(user.getUsername() + " has no disabled OTP device to restore (none was "
                    + "disabled, it was purged after 30 days, or a new device was enrolled)", Response.Status.CONFLICT);
        }
        return inOneTransaction(() -> {
            int purged = DisabledOtp.purge(user, now);
            int restored = DisabledOtp.restore(user);
            user.removeRequiredAction(TwostepDecision.CONFIGURE_TOTP);
            Map<String, Object> out = result("otp.restore", user);
            out.put("devices_restored", restored);
            out.put("devices_purged", purged);
            actor.event("otp.restore", user, null, asked.reason(), extra("by", blankToNull(asked.by()),
                    "devices_restored", restored, "devices_purged", purged > 0 ? purged : null));
            return out;
        });
    }

    /**
     * Admin-made backup codes: the caller generates the codes and sends only the credential Keycloak
     * stores (hashes); the plain codes never reach Keycloak and are shown once by the caller.
     */
    @POST
    @Path("users/{id}/codes")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> codes(@PathParam("id") String id, Map<String, Object> body) {
        Map<String, Object> in = body == null ? Map.of() : body;
        String by = blankToNull(text(in, "by"));
        String reason = blankToNull(text(in, "reason"));
        Long count = number(in, "count");
        Object cred = in.get("credential");
        if (!(cred instanceof Map<?, ?> raw) || by == null || count == null) {
            throw bad("credential (the recovery-authn-codes credential to store), count and by are required");
        }
        Map<String, String> credential = new LinkedHashMap<>();
        for (String key : List.of("secretData", "credentialData", "userLabel")) {
            Object v = raw.get(key);
            if (v != null && !(v instanceof String)) {
                throw bad("credential." + key + " must be a string");
            }
            credential.put(key, (String) v);
        }
        if (credential.get("secretData") == null || credential.get("credentialData") == null) {
            throw bad("credential.secretData and credential.credentialData are required");
        }
        UserModel user = asked(id, in).user();
        return inOneTransaction(() -> {
            boolean replaced = !UserWrites.stored(user, UserWrites.RECOVERY_CODES).isEmpty();
            CredentialModel made = writes.storeCodes(user, credential, by);
            Map<String, Object> out = result("codes.generate", user);
            out.put("created", made.getCreatedDate());
            out.put("replaced", replaced);
            actor.event("codes.generate", user, null, reason, extra("by", by, "codes_count", count, "replaced", replaced));
            return out;
        });
    }

    // -- shared by every endpoint ---------------------------------------------------------------------

    /** Whom a change is for (locked, checked) and the body's {@code by} as given and {@code reason} (or null). */
    private record Asked(UserModel user, String by, String reason) {
    }

    /** The body's by and reason, then the user (lockedTarget) and the rules on who may act on them. */
    private Asked asked(String id, Map<String, Object> body) {
        Map<String, Object> in = body == null ? Map.of() : body;
        String by = text(in, "by");
        String reason = blankToNull(text(in, "reason"));
        UserModel user = lockedTarget(id);
        actor.refuseUnlessAllowed(user);
        return new Asked(user, by, reason);
    }

    /** The user, after Keycloak's permission check, with its row locked and read afresh. */
    UserModel lockedTarget(String id) {
        UserModel user = id == null ? null : session.users().getUserById(realm, id);
        if (user == null) {
            throw ErrorResponse.error("no user with id " + id + " in realm " + realm.getName(),
                    Response.Status.NOT_FOUND);
        }
        auth.users().requireManage(user);
        UserModel locked = UserRowLock.lockAndRead(session, realm, id);
        if (locked == null) {
            // A directory user with import off has no row to lock, and Keycloak keeps no required
            // action or group for them: refuse before anything is written.
            throw ErrorResponse.error(user.getUsername() + " is not stored in Keycloak's database (a directory user"
                    + " with import off is read-only to Keycloak); turn on 'Import users' in the user federation",
                    Response.Status.CONFLICT);
        }
        return locked;
    }

    /** Runs the writes; a failure marks the whole transaction rollback-only and is passed on. */
    <T> T inOneTransaction(Supplier<T> work) {
        try {
            return AdminAccess.unfiltered(session, work); // after the permission check: the indexes, unfiltered
        } catch (RuntimeException e) {
            session.getTransactionManager().setRollbackOnly();
            throw e;
        }
    }

    /** What every change answers with first: the action and whom it was done to. */
    private static Map<String, Object> result(String action, UserModel user) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("action", action);
        out.put("user_id", user.getId());
        out.put("username", user.getUsername());
        return out;
    }
}
