package io.twostep.keycloak.expiry;

import io.twostep.keycloak.HelpRequestAuthenticator;
import io.twostep.keycloak.HelpRequestCredentialProvider;
import io.twostep.keycloak.HelpRequestLimits;
import io.twostep.keycloak.TwostepAdminEvents;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.UserRowLock;
import jakarta.persistence.EntityManager;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * Expired help requests (docs/formats.md, "Help requests"; docs/provider.md, "The expiry task"): found
 * through the index group {@code twostep-help-requests} with one statement ({@link #open}), each one
 * closed in a transaction of its own under the user's row lock ({@link #end}), the same lock the admin
 * extension's dismiss takes, which is how sync closes an expired request in provider mode: whoever
 * comes second finds no request (or a newer one) and does nothing, so one expiry has one record.
 */
final class HelpEnder {

    /** One open request as read: its user, its credential, its asked_at as stored (null: unreadable). */
    record Open(String userId, String credentialId, String askedAtRaw) {
    }

    private HelpEnder() {
    }

    /**
     * The open requests of the index group's members, in one SQL statement: the memberships by their
     * group id (indexed), the credentials by their user (indexed). The rows are the open requests
     * (bounded by the realm-wide filing limit), never the realm's users.
     */
    static List<Open> open(KeycloakSession session, RealmModel realm, String indexGroupId) {
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        List<Object[]> rows = em.createQuery("select m.user.id, c.id, c.credentialData from UserGroupMembershipEntity m,"
                        + " CredentialEntity c where m.groupId = :group and c.user = m.user and c.type = :type",
                        Object[].class).setParameter("group", indexGroupId)
                .setParameter("type", HelpRequestCredentialProvider.TYPE).getResultList();
        return rows.stream().map(r -> {
            Map<String, String> data = TwostepCondition.parseRecord((String) r[2]);
            return new Open((String) r[0], (String) r[1], data == null ? null : data.get("asked_at"));
        }).toList();
    }

    /**
     * Closes the user's request if it is still the one read ({@code askedAtRaw}) and still expired by the
     * realm's policy now: the credential and the index membership, and one admin event
     * ({@code twostep/users/<id>/help.expire}). 1 when closed, 0 when there was nothing to close.
     */
    static int end(KeycloakSession session, RealmModel realm, String userId, String askedAtRaw, long nowMs) {
        UserModel user = UserRowLock.lockAndRead(session, realm, userId);
        if (user == null) {
            return 0;
        }
        List<CredentialModel> open = user.credentialManager()
                .getStoredCredentialsByTypeStream(HelpRequestCredentialProvider.TYPE).toList();
        if (open.isEmpty()) {
            return 0; // closed meanwhile (answered, dismissed, or expired by sync)
        }
        Map<String, String> data = TwostepCondition.parseRecord(open.get(0).getCredentialData());
        String askedAt = data == null ? null : data.get("asked_at");
        int days = HelpRequestLimits.fromPolicy(realm.getAttribute(ExpiryTask.POLICY_ATTRIBUTE)).expiryDays();
        if (askedAt == null || !askedAt.equals(askedAtRaw) || !HelpRequestLimits.expiredAt(nowMs, askedAt, days)) {
            return 0; // filed anew meanwhile, or not expired under the policy as it is now
        }
        HelpRequestAuthenticator.close(session, realm, user);
        Map<String, String> details = new TreeMap<>();
        details.put("action", "help.expire");
        details.put("user_id", user.getId());
        details.put("username", user.getUsername());
        details.put("asked_at", askedAt);
        details.put("expiry_days", Integer.toString(days));
        details.put("reason", "expired: not answered within " + days + " days");
        TwostepAdminEvents.writeAsTask(session, realm, user.getId(), "help.expire", details, nowMs);
        return 1;
    }
}
