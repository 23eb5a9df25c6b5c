package io.twostep.keycloak.admin;

import io.twostep.keycloak.AccessPass;
import io.twostep.keycloak.BypassCredentialProvider;
import io.twostep.keycloak.TwostepCondition;
import jakarta.ws.rs.core.Response;
import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.ErrorResponse;

/**
 * The kind of a bypass being granted or extended (docs/bypass.md, "Kinds"): the realm policy's
 * allowed kinds enforced here, and for an access pass the pass made (returned once, to the caller of
 * the grant) and its salted hash (the record's secretData). An extension keeps the pass.
 */
final class PassGrant {

    private static final SecureRandom RANDOM = new SecureRandom();

    /** The plan with the kind's record fields, the secretData to store, and the new pass (or null). */
    record Prepared(BypassRules.Plan plan, String secretData, String pass, String kind) {
        /** For the admin event and the answer: {@code password}, {@code pass once}, {@code pass multi}. */
        String label() {
            String use = plan.record() == null ? null : plan.record().get("pass_use");
            return kind == null ? null : use == null ? kind : kind + " " + use;
        }
    }

    private PassGrant() {
    }

    static Prepared prepare(RealmModel realm, UserModel user, BypassRules.Plan plan, String kind, String passUse) {
        if (plan.record() == null) {
            return new Prepared(plan, null, null, null);
        }
        boolean extending = "bypass.extend".equals(plan.event());
        List<CredentialModel> stored = UserWrites.stored(user, BypassCredentialProvider.TYPE);
        Map<String, String> current = stored.size() == 1 ? TwostepCondition.parseRecord(stored.get(0).getCredentialData())
                : null;
        BypassKinds.Choice choice = BypassKinds.choose(
                BypassKinds.parse(realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE)), kind, passUse, extending,
                current);
        if (choice.refusal() != null) {
            throw ErrorResponse.error(choice.refusal(), Response.Status.BAD_REQUEST);
        }
        Map<String, String> record = new LinkedHashMap<>(plan.record());
        record.putAll(BypassKinds.fields(choice, extending, current));
        BypassRules.Plan withKind = new BypassRules.Plan(plan.event(), record, plan.sessions(), plan.fromMs(),
                plan.toMs(), plan.removeOtp(), plan.previousUntil());
        if (!choice.pass()) {
            return new Prepared(withKind, "{}", null, choice.kind());
        }
        if (extending) {
            return new Prepared(withKind, stored.get(0).getSecretData(), null, choice.kind());
        }
        String pass = AccessPass.generate(RANDOM);
        return new Prepared(withKind, AccessPass.secretData(pass, RANDOM), pass, choice.kind());
    }
}
