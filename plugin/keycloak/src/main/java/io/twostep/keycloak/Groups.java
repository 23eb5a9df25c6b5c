package io.twostep.keycloak;

import java.util.List;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;

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
}
