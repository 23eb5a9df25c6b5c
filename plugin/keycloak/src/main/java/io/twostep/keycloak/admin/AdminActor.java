package io.twostep.keycloak.admin;

import io.twostep.keycloak.TwostepAdminEvents;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.keycloak.models.ClientModel;
import org.keycloak.models.Constants;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RoleModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.AdminEventBuilder;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;

/**
 * The signed-in admin of a request to the admin extension: who they are to the user they act on
 * ({@link #parties}: themselves, or holding fewer realm-management roles, for {@link BypassRules}) and
 * the admin events written in their name ({@link TwostepAdminEvents}).
 */
record AdminActor(RealmModel realm, AdminPermissionEvaluator auth, AdminEventBuilder events) {

    private static final String MASTER = "master";

    /** Self and the privileged-target rule, as plain values for the pure rules. */
    BypassRules.Parties parties(UserModel target) {
        AdminAuth admin = auth.adminAuth();
        UserModel actor = admin.getUser();
        boolean self = actor != null && actor.getId().equals(target.getId());
        List<String> missing = new ArrayList<>();
        for (RoleModel role : privilegedRoles(target)) {
            if (!actorHolds(admin, role)) {
                missing.add(role.getName());
            }
        }
        missing.sort(null);
        return new BypassRules.Parties(self, missing);
    }

    /** Refuses (403) a change to the admin's own account or to a user holding roles the admin does not. */
    void refuseUnlessAllowed(UserModel user) {
        BypassRules.Decision refused = BypassRules.refuseParties(parties(user), user.getUsername());
        if (refused != null) {
            BypassChange.allowed(refused);
        }
    }

    private List<RoleModel> privilegedRoles(UserModel target) {
        List<RoleModel> held = new ArrayList<>();
        ClientModel rm = realm.getClientByClientId(Constants.REALM_MANAGEMENT_CLIENT_ID);
        if (rm != null) {
            rm.getRolesStream().filter(target::hasRole).forEach(held::add);
        }
        RoleModel admin = realm.getRole("admin"); // the master realm's administrators
        if (MASTER.equals(realm.getName()) && admin != null && target.hasRole(admin)) {
            held.add(admin);
        }
        return held;
    }

    private boolean actorHolds(AdminAuth admin, RoleModel role) {
        UserModel actor = admin.getUser();
        if (actor == null) {
            return false;
        }
        RealmModel actorRealm = admin.getRealm();
        if (actorRealm.getId().equals(realm.getId())) {
            return actor.hasRole(role);
        }
        // An operator of the master realm: its roles over this realm are those of the realm's client there.
        RoleModel masterAdmin = actorRealm.getRole("admin");
        if (masterAdmin != null && actor.hasRole(masterAdmin)) {
            return true;
        }
        ClientModel client = realm.getMasterAdminClient();
        RoleModel same = client == null ? null : client.getRole(role.getName());
        return same != null && actor.hasRole(same);
    }

    String name() {
        AdminAuth admin = auth.adminAuth();
        String name = admin.getUser() == null ? "?" : admin.getUser().getUsername();
        return name + "@" + admin.getRealm().getName();
    }

    /** The change's admin event, in the admin's name ({@code extra}: null values left out). */
    void event(String what, UserModel user, String until, String reason, Map<String, Object> extra) {
        TwostepAdminEvents.write(events, user, TwostepAdminEvents.representation(what, name(), user, until,
                reason, extra));
    }

    /** An event's details from key, value pairs, in order. */
    static Map<String, Object> extra(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }
}
