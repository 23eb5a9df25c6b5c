package io.twostep.keycloak.admin;

import io.twostep.keycloak.HelpRequestAuthenticator;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.keycloak.authorization.AuthorizationProvider;
import org.keycloak.authorization.fgap.AdminPermissionsSchema;
import org.keycloak.authorization.model.Policy;
import org.keycloak.authorization.model.Resource;
import org.keycloak.authorization.model.ResourceServer;
import org.keycloak.models.ClientModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.ErrorResponse;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;

/**
 * What the caller may do with the realm's users, as Keycloak's own permissions say
 * ({@code AdminPermissionEvaluator}: realm-management roles, or fine-grained admin permissions v2):
 * {@code manage} is {@code all} (every user, e.g. manage-users), {@code some} (at least one user or the
 * members of at least one group, e.g. "members of staff may be managed by dana") or {@code none};
 * {@code query} whether Keycloak answers the caller's user searches (filtered to whom they may view).
 * The admin pages let in whoever may manage someone; every change is still checked per user.
 */
final class AdminAccess {

    /** How many groups a permission on every group ("all groups") is tried on before "some" is given up. */
    static final int ALL_GROUPS_PROBE = 50;
    /** Open help requests one queue read returns at most. */
    static final int HELP_QUEUE_MAX = 1000;

    private AdminAccess() {
    }

    static Map<String, Object> of(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth) {
        Map<String, Object> out = new LinkedHashMap<>();
        String manage = auth.users().canManage() ? "all" : managesSome(session, realm, auth) ? "some" : "none";
        out.put("manage", manage);
        out.put("view", auth.users().canView() ? "all" : "some".equals(manage) ? "some" : "none");
        out.put("query", auth.users().canQuery());
        out.put("fine_grained", AdminPermissionsSchema.SCHEMA.isAdminPermissionsEnabled(realm));
        return out;
    }

    /**
     * The ids of the users with an open help request (members of the index group) whom the caller may
     * view, as Keycloak's permissions say: the queue of an admin who may not read the index group itself
     * (a delegated admin sees the requests of the members of staff, and no other).
     */
    static Map<String, Object> helpQueue(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth) {
        if (!(auth.users().canQuery() || auth.users().canView())) {
            throw ErrorResponse.error("not allowed to read the help requests of realm " + realm.getName(),
                    Response.Status.FORBIDDEN);
        }
        GroupModel index = unfiltered(session, () -> HelpRequestAuthenticator.indexGroup(session, realm, false));
        List<UserModel> members = index == null ? List.of()
                : unfiltered(session, () -> session.users().getGroupMembersStream(realm, index, 0, HELP_QUEUE_MAX + 1)
                        .toList());
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("users", members.stream().limit(HELP_QUEUE_MAX).filter(u -> auth.users().canView(u))
                .map(UserModel::getId).toList());
        out.put("complete", members.size() <= HELP_QUEUE_MAX);
        return out;
    }

    /**
     * Twostep's own bookkeeping (the index groups), read or written after the caller's permission check
     * for the user concerned, unfiltered: under fine-grained admin permissions v2 Keycloak otherwise
     * filters group look-ups by the caller's permissions, and a delegated admin sees no index group.
     */
    static <T> T unfiltered(KeycloakSession session, Supplier<T> work) {
        List<T> out = new ArrayList<>(1);
        AdminPermissionsSchema.runWithoutAuthorization(session, () -> out.add(work.get()));
        return out.get(0);
    }

    /**
     * Fine-grained admin permissions v2 only: each user or group a permission names is asked of
     * Keycloak's evaluator for this caller; true at the first one the caller may manage (members of).
     */
    private static boolean managesSome(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth) {
        if (!AdminPermissionsSchema.SCHEMA.isAdminPermissionsEnabled(realm)) {
            return false;
        }
        ClientModel client = realm.getAdminPermissionsClient();
        AuthorizationProvider authz = session.getProvider(AuthorizationProvider.class);
        ResourceServer server = client == null || authz == null ? null
                : authz.getStoreFactory().getResourceServerStore().findByClient(client);
        if (server == null) {
            return false;
        }
        List<Policy> users = authz.getStoreFactory().getPolicyStore()
                .findByResourceType(server, AdminPermissionsSchema.USERS_RESOURCE_TYPE);
        for (Policy permission : users) {
            for (Resource r : permission.getResources()) {
                UserModel user = session.users().getUserById(realm, r.getName());
                if (user != null && auth.users().canManage(user)) {
                    return true;
                }
            }
        }
        List<Policy> groups = authz.getStoreFactory().getPolicyStore()
                .findByResourceType(server, AdminPermissionsSchema.GROUPS_RESOURCE_TYPE);
        for (Policy permission : groups) {
            if (permission.getResources().isEmpty()) { // the permission is for every group
                boolean any = session.groups().getTopLevelGroupsStream(realm, 0, ALL_GROUPS_PROBE)
                        .anyMatch(g -> auth.groups().canManageMembers(g));
                if (any) {
                    return true;
                }
            }
            for (Resource r : permission.getResources()) {
                GroupModel group = realm.getGroupById(r.getName());
                if (group != null && auth.groups().canManageMembers(group)) {
                    return true;
                }
            }
        }
        return false;
    }
}
