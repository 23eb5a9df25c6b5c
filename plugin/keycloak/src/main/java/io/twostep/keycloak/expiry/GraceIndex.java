package io.twostep.keycloak.expiry;

import io.twostep.keycloak.Groups;
import org.jboss.logging.Logger;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.utils.KeycloakModelUtils;

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
            String realmId = realm.getId();
            String userId = user.getId();
            String bucketName = GraceRules.bucketName(user.getCreatedTimestamp());
            KeycloakSessionFactory factory = session.getKeycloakSessionFactory();
            KeycloakModelUtils.runJobInTransaction(factory, s -> {
                RealmModel r = s.realms().getRealm(realmId);
                s.getContext().setRealm(r);
                GroupModel root = Groups.top(s, r, ROOT);
                if (root == null) {
                    root = s.groups().createGroup(r, ROOT);
                }
                GroupModel bucket = Groups.child(root, bucketName);
                if (bucket == null) {
                    bucket = s.groups().createGroup(r, bucketName, root);
                }
                if (Groups.child(bucket, userId) == null) {
                    s.groups().createGroup(r, userId, bucket);
                }
            });
        } catch (RuntimeException e) {
            LOG.debugf("twostep: grace sign-in not indexed (%s); the next one is", e.getClass().getSimpleName());
        }
    }
}
