package io.twostep.keycloak;

import java.util.List;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.utils.KeycloakModelUtils;

/** Group look-ups by exact name, one search each, for the group-tree indexes (docs/formats.md). */
public final class Groups {

    private Groups() {
    }

    /** The top-level group of that exact name, or null. */
    public static GroupModel top(KeycloakSession session, RealmModel realm, String name) {
        return session.groups().getTopLevelGroupsStream(realm, name, true, 0, 2)
                .filter(g -> name.equals(g.getName())).findFirst().orElse(null);
    }

    /** The child of that exact name, or null. */
    public static GroupModel child(GroupModel parent, String name) {
        return parent.getSubGroupsStream(name, true, 0, 2).filter(g -> name.equals(g.getName())).findFirst()
                .orElse(null);
    }

    public static List<GroupModel> children(GroupModel parent) {
        return parent.getSubGroupsStream().toList();
    }

    /**
     * Files {@code entry} under {@code root/bucket} in a transaction of its own, making what is missing
     * (idempotent: an entry already filed costs three look-ups). The indexes whose filing must not be
     * undone with the caller's transaction use it (the grace and disabled-device indexes).
     */
    public static void fileInOwnTransaction(KeycloakSession session, RealmModel realm, String root, String bucket,
            String entry) {
        String realmId = realm.getId();
        KeycloakModelUtils.runJobInTransaction(session.getKeycloakSessionFactory(), s -> {
            RealmModel r = s.realms().getRealm(realmId);
            s.getContext().setRealm(r);
            GroupModel top = top(s, r, root);
            if (top == null) {
                top = s.groups().createGroup(r, root);
            }
            GroupModel day = child(top, bucket);
            if (day == null) {
                day = s.groups().createGroup(r, bucket, top);
            }
            if (child(day, entry) == null) {
                s.groups().createGroup(r, entry, day);
            }
        });
    }
}
