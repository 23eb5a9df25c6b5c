package io.twostep.keycloak.admin;

import io.twostep.keycloak.BypassCredentialProvider;
import io.twostep.keycloak.DisabledOtp;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.TwostepDecision;
import jakarta.ws.rs.core.Response;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.ErrorResponse;

/**
 * A bypass granted, extended or revoked by the admin extension, on its own or as the answer to a help
 * request: the rules' decision on the user's current record ({@link BypassRules}), the kind
 * ({@link PassGrant}), then in the request's one transaction the writes ({@link UserWrites},
 * {@link DisabledOtp}), the admin event and the answer ({@link #apply}).
 */
final class BypassChange {

    private final KeycloakSession session;
    private final RealmModel realm;
    private final LongSupplier clock;
    private final UserWrites writes;
    private final AdminActor actor;

    BypassChange(KeycloakSession session, RealmModel realm, LongSupplier clock, UserWrites writes, AdminActor actor) {
        this.session = session;
        this.realm = realm;
        this.clock = clock;
        this.writes = writes;
        this.actor = actor;
    }

    /** What the rules allow for this request on the user's current record, by Keycloak's clock. */
    BypassRules.Decision decide(UserModel user, BypassRules.Request req) {
        TwostepDecision.Policy policy =
                TwostepDecision.parsePolicy(realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE));
        List<CredentialModel> records = UserWrites.stored(user, BypassCredentialProvider.TYPE);
        return BypassRules.decide(clock.getAsLong(), policy, actor.parties(user), req, user.getUsername(),
                currentRecord(user), records.size());
    }

    /** The user's bypass record as strings; {@code marker=damaged} when unreadable; null when none. */
    static Map<String, String> currentRecord(UserModel user) {
        List<CredentialModel> records = UserWrites.stored(user, BypassCredentialProvider.TYPE);
        if (records.isEmpty()) {
            return null;
        }
        Map<String, String> record = TwostepCondition.parseRecord(records.get(0).getCredentialData());
        return record == null ? Map.of("marker", "damaged") : record;
    }

    /** The decision's plan; a refusal is Keycloak's error answer with the rules' status and line. */
    static BypassRules.Plan allowed(BypassRules.Decision decision) {
        if (!decision.allowed()) {
            throw ErrorResponse.error(decision.message(), Response.Status.fromStatusCode(decision.status()));
        }
        return decision.plan();
    }

    /** The allowed plan with the kind the body asks for ({@code kind}, {@code pass_use}); before any write. */
    PassGrant.Prepared prepare(UserModel user, BypassRules.Decision decision, Map<String, Object> in) {
        return PassGrant.prepare(realm, user, allowed(decision), RequestBody.text(in, "kind"),
                RequestBody.text(in, "pass_use"));
    }

    /**
     * The writes of the prepared plan, its admin event and the answer. {@code helpAskedAt}: the help
     * request the grant answers (closed with it, the event is {@code help.grant}), or null.
     */
    Map<String, Object> apply(UserModel user, BypassRules.Request req, PassGrant.Prepared prepared,
                              String helpAskedAt) {
        BypassRules.Plan plan = prepared.plan();
        Map<String, String> record = plan.record();
        Map<String, Object> out = write(user, plan, prepared);
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("by", record == null ? RequestBody.blankToNull(req.by()) : record.get("by"));
        String what = plan.event();
        if (helpAskedAt == null) {
            out.put("break_glass", req.breakGlass());
            extra.put("previous_until", plan.previousUntil());
            extra.put("reset_device", record == null ? null : record.get("reset_device"));
        } else {
            writes.closeHelpRequest(user);
            what = "help.grant";
            out.put("action", what);
            out.put("asked_at", helpAskedAt);
            extra.put("asked_at", helpAskedAt);
        }
        for (String key : List.of("devices_removed", "devices_disabled", "sessions_ended")) {
            extra.put(key, out.get(key));
        }
        extra.put("break_glass", req.breakGlass() ? Boolean.TRUE : null);
        extra.put("kind", prepared.label()); // never the pass itself
        actor.event(what, user, (String) out.get("until"),
                record == null ? RequestBody.blankToNull(req.reason()) : record.get("reason"), extra);
        return withPass(out, prepared);
    }

    private Map<String, Object> write(UserModel user, BypassRules.Plan plan, PassGrant.Prepared prepared) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("action", plan.event());
        out.put("user_id", user.getId());
        out.put("username", user.getUsername());
        out.put("sessions_ended", writes.endSessions(user, plan.sessions(), plan.fromMs(), plan.toMs()));
        // The lost device is disabled, not deleted: restorable with otp/restore (DisabledOtp).
        int disabled = plan.removeOtp() ? DisabledOtp.disable(session, realm, user, plan.record() == null ? null
                : plan.record().get("by"), clock.getAsLong()) : 0;
        out.put("devices_removed", disabled);
        out.put("devices_disabled", disabled);
        CredentialModel made = writes.bypass(user, plan, prepared.secretData());
        if (made == null) {
            out.put("until", plan.previousUntil());
        } else {
            out.put("until", plan.record().get("until"));
            out.put("granted_at", plan.record().get("granted_at"));
            out.put("previous_until", plan.previousUntil());
            out.put("credential_id", made.getId());
        }
        return out;
    }

    /** The answer with the bypass's kind and, for a new access pass, the pass: here once, stored nowhere. */
    private static Map<String, Object> withPass(Map<String, Object> out, PassGrant.Prepared prepared) {
        if (prepared.kind() != null) {
            out.put("kind", prepared.kind());
            out.put("pass_use", prepared.plan().record().get("pass_use"));
        }
        if (prepared.pass() != null) {
            out.put("access_pass", prepared.pass());
        }
        return out;
    }
}
