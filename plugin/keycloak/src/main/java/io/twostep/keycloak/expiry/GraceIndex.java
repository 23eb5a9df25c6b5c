package io.twostep.keycloak.expiry;

import io.twostep.keycloak.Groups;
import org.jboss.logging.Logger;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The grace index (docs/formats.md): users who signed in with the password alone because they were
 * in their grace period, so that the expiry task finds their sessions when the grace is over
 * without reading the realm's users. {@code twostep-grace / <creation day> / <user id>}, written by
 * the sign-in condition at a GRACE decision, in a transaction of its own (a failure, such as two
 * sign-ins of one user at the same instant meeting the unique sibling names, never fails the login).
 */
public final class GraceIndex {

    static final String ROOT = "twostep-grace";
    private static final Logger LOG = Logger.getLogger(GraceIndex.class);

    private GraceIndex() {
    }

    /** Files the user (idempotent: a user already filed costs three look-ups). Never throws. */
    public static void note(KeycloakSession session, RealmModel realm, UserModel user) {
        try {
            if (!ExpiryProviderFactory.serves(realm.getName(), realm.getAttribute(ExpiryTask.POLICY_ATTRIBUTE))) {
                return; // no task to end it: nothing to file
            }
            Groups.fileInOwnTransaction(session, realm, ROOT, GraceRules.bucketName(user.getCreatedTimestamp()),
                    user.getId());
        } catch (RuntimeException e) {
            LOG.debugf("twostep: grace sign-in not indexed (%s); the next one is", e.getClass().getSimpleName());
        }
    }
}
