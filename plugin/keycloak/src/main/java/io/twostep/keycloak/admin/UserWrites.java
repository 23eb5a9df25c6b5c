package io.twostep.keycloak.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.twostep.keycloak.BypassCredentialProvider;
import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.CodesProvenanceCredentialProvider;
import io.twostep.keycloak.HelpRequestAuthenticator;
import io.twostep.keycloak.HelpRequestCredentialProvider;
import io.twostep.keycloak.TwostepDecision;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongSupplier;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.services.managers.AuthenticationManager;

/**
 * The writes of the admin endpoints, each in the request's transaction (the caller marks it
 * rollback-only when one fails): the bypass record and its index entry, the sessions a change ends,
 * OTP devices, the help request, backup codes with their provenance. The shapes are those of
 * docs/formats.md, the same Python writes.
 */
final class UserWrites {

    static final String OTP = "otp";
    static final String RECOVERY_CODES = "recovery-authn-codes";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final KeycloakSession session;
    private final RealmModel realm;
    private final LongSupplier clock;

    UserWrites(KeycloakSession session, RealmModel realm, LongSupplier clock) {
        this.session = session;
        this.realm = realm;
        this.clock = clock;
    }

    static List<CredentialModel> stored(UserModel user, String type) {
        return user.credentialManager().getStoredCredentialsByTypeStream(type).toList();
    }

    /** Writes the plan's bypass record (or removes the record) with its index entries; returns the new credential or null. */
    CredentialModel bypass(UserModel user, BypassRules.Plan plan) {
        return bypass(user, plan, "{}");
    }

    /** The same, with the record's secretData (an access pass's salted hash, docs/formats.md). */
    CredentialModel bypass(UserModel user, BypassRules.Plan plan, String secretData) {
        if (plan.record() == null) {
            removeAll(user, BypassCredentialProvider.TYPE);
            BypassIndex.removeEntries(session, realm, user.getId(), null);
            GroupModel root = BypassIndex.root(session, realm);
            if (root != null && user.isMemberOf(root)) {
                user.leaveGroup(root); // the index before 0.3 was membership of the root
            }
            return null;
        }
        user.removeRequiredAction(TwostepDecision.CONFIGURE_TOTP);
        removeAll(user, BypassCredentialProvider.TYPE);
        CredentialModel model = new CredentialModel();
        model.setType(BypassCredentialProvider.TYPE);
        model.setUserLabel("twostep bypass");
        model.setSecretData(secretData == null ? "{}" : secretData);
        model.setCredentialData(json(new TreeMap<>(plan.record())));
        model.setCreatedDate(clock.getAsLong());
        CredentialModel created = user.credentialManager().createStoredCredential(model);
        BypassIndex.ensureBucket(session, realm,
                BypassIndex.bucketName(TwostepDecision.parseTime(plan.record().get("until"))));
        GroupModel entry = BypassIndex.addEntry(session, realm, user.getId(), created.getId(), user.getUsername(),
                plan.record());
        BypassIndex.removeEntries(session, realm, user.getId(), entry.getId());
        return created;
    }

    int endSessions(UserModel user, BypassRules.Sessions which, long fromMs, long toMs) {
        if (which == BypassRules.Sessions.NONE) {
            return 0;
        }
        int ended = 0;
        if (which == BypassRules.Sessions.ALL) {
            // What POST /users/{id}/logout does: refresh tokens issued before now are refused, offline ones too.
            session.users().setNotBeforeForUser(realm, user, (int) (clock.getAsLong() / 1000));
        }
        for (UserSessionModel s : session.sessions().getUserSessionsStream(realm, user).toList()) {
            if (which == BypassRules.Sessions.ALL || inWindow(s, fromMs, toMs)) {
                AuthenticationManager.backchannelLogout(session, s, true);
                ended++;
            }
        }
        if (which == BypassRules.Sessions.WINDOW) {
            for (UserSessionModel s : session.sessions().getOfflineUserSessionsStream(realm, user).toList()) {
                if (inWindow(s, fromMs, toMs)) {
                    session.sessions().removeOfflineUserSession(realm, s);
                    ended++;
                }
            }
        }
        return ended;
    }

    private static boolean inWindow(UserSessionModel s, long fromMs, long toMs) {
        long started = s.getStarted() * 1000L;
        return fromMs <= started && started <= toMs;
    }

    int removeAll(UserModel user, String type) {
        List<String> ids = stored(user, type).stream().map(CredentialModel::getId).toList();
        ids.forEach(cid -> user.credentialManager().removeStoredCredentialById(cid));
        return ids.size();
    }

    /** Closes the user's help request: its credential and its membership of the queue's index group. */
    void closeHelpRequest(UserModel user) {
        removeAll(user, HelpRequestCredentialProvider.TYPE);
        GroupModel index = HelpRequestAuthenticator.indexGroup(session, realm, false);
        if (index != null && user.isMemberOf(index)) {
            user.leaveGroup(index);
        }
    }

    /**
     * Replaces the user's backup codes by the credential given (hashes only: the plain codes never
     * reach Keycloak), records who made them, and keeps the OTP devices first in credential order.
     */
    CredentialModel storeCodes(UserModel user, Map<String, String> credential, String by) {
        removeAll(user, RECOVERY_CODES);
        removeAll(user, CodesProvenanceCredentialProvider.TYPE);
        long now = clock.getAsLong();
        CredentialModel codes = new CredentialModel();
        codes.setType(RECOVERY_CODES);
        codes.setUserLabel(credential.get("userLabel"));
        codes.setSecretData(credential.get("secretData"));
        codes.setCredentialData(credential.get("credentialData"));
        codes.setCreatedDate(now);
        CredentialModel made = user.credentialManager().createStoredCredential(codes);
        Map<String, String> provenance = new TreeMap<>();
        provenance.put("at", TwostepDecision.formatTime(now));
        provenance.put("by", by);
        provenance.put("codes_created", String.valueOf(made.getCreatedDate()));
        CredentialModel record = new CredentialModel();
        record.setType(CodesProvenanceCredentialProvider.TYPE);
        record.setUserLabel("twostep backup codes made by an admin");
        record.setSecretData("{}");
        record.setCredentialData(json(provenance));
        record.setCreatedDate(now);
        user.credentialManager().createStoredCredential(record);
        List<String> otps = new ArrayList<>(stored(user, OTP).stream().map(CredentialModel::getId).toList());
        Collections.reverse(otps);
        otps.forEach(id -> user.credentialManager().moveStoredCredentialTo(id, null));
        return made;
    }

    static String json(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
