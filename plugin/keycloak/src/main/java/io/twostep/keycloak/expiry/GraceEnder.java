package io.twostep.keycloak.expiry;

import io.twostep.keycloak.TwostepAdminEvents;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.TwostepDecision;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.models.utils.KeycloakModelUtils;

/**
 * One grace entry in one transaction: the sign-in decision as it would be now; when it is ENROLL
 * (grace over, still no second factor), every session of the user ends, online and offline (all of
 * them were opened with the password alone: the user never had a second factor), the user's
 * not-before refuses every token issued before, and one admin event says so.
 */
final class GraceEnder {

    private GraceEnder() {
    }

    /** 1 when sessions were ended, 0 otherwise. */
    static int run(KeycloakSession session, RealmModel realm, String entryGroupId, long nowMs) {
        GroupModel entry = session.groups().getGroupById(realm, entryGroupId);
        if (entry == null) {
            return 0;
        }
        UserModel user = session.users().getUserById(realm, entry.getName());
        if (user == null) {
            session.groups().removeGroup(realm, entry);
            return 0;
        }
        TwostepDecision.Policy policy = TwostepDecision.parsePolicy(realm.getAttribute(ExpiryTask.POLICY_ATTRIBUTE));
        List<String> paths = user.getGroupsStream().map(KeycloakModelUtils::buildGroupPath).collect(Collectors.toList());
        boolean hasDevice = has(user, "otp") || has(user, "webauthn");
        boolean hasCodes = has(user, "recovery-authn-codes");
        Map<String, String> record = TwostepCondition.readRecord(user.credentialManager());
        TwostepDecision.Outcome outcome = TwostepDecision.decide(nowMs, policy, user.getCreatedTimestamp(),
                TwostepDecision.inScope(policy, paths), record, hasDevice, hasCodes).outcome();
        GraceRules.Action action = GraceRules.action(outcome);
        if (action == GraceRules.Action.KEEP) {
            return 0;
        }
        int online = 0;
        int offline = 0;
        if (action == GraceRules.Action.END_SESSIONS) {
            for (UserSessionModel s : session.sessions().getUserSessionsStream(realm, user).toList()) {
                session.sessions().removeUserSession(realm, s);
                online++;
            }
            for (UserSessionModel s : session.sessions().getOfflineUserSessionsStream(realm, user).toList()) {
                session.sessions().removeOfflineUserSession(realm, s);
                offline++;
            }
            session.users().setNotBeforeForUser(realm, user, (int) (nowMs / 1000));
            if (online + offline > 0) {
                TwostepAdminEvents.writeAsTask(session, realm, user.getId(), "grace",
                        Map.of("action", "grace.end", "user_id", user.getId(), "username", user.getUsername(),
                                "reason", "grace period over, no second factor set up",
                                "sessions_ended", Integer.toString(online),
                                "offline_sessions_ended", Integer.toString(offline)), nowMs);
            }
        }
        session.groups().removeGroup(realm, entry);
        return online + offline > 0 ? 1 : 0;
    }

    private static boolean has(UserModel user, String type) {
        return user.credentialManager().getStoredCredentialsByTypeStream(type).findAny().isPresent();
    }

}
