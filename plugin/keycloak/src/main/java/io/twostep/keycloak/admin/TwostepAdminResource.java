package io.twostep.keycloak.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.twostep.keycloak.BypassCredentialProvider;
import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.TwostepAdminEvents;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.TwostepDecision;
import io.twostep.keycloak.UserRowLock;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongSupplier;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.ClientModel;
import org.keycloak.models.Constants;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RoleModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.services.ErrorResponse;
import org.keycloak.services.ErrorResponseException;
import org.keycloak.services.managers.AuthenticationManager;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.AdminEventBuilder;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;

/**
 * {@code /admin/realms/{realm}/twostep/...}: every change twostep makes to a user, each one Keycloak
 * transaction. The order is the same for every endpoint: the user (404), Keycloak's permission to
 * manage that user ({@code AdminPermissionEvaluator}: realm-management roles or fine-grained admin
 * permissions; 403), the user's row locked and the user read afresh, the pure rules
 * ({@link BypassRules}: nobody acts on themselves, a user holding realm-management roles only by an
 * admin holding them too, the policy's bypass maximum by Keycloak's clock), then the writes and one
 * admin event. Any failure after the first write marks the transaction rollback-only: all or nothing.
 */
public class TwostepAdminResource {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String OTP = "otp";
    private static final String MASTER = "master";

    private final KeycloakSession session;
    private final RealmModel realm;
    private final AdminPermissionEvaluator auth;
    private final AdminEventBuilder events;
    private final LongSupplier clock;

    public TwostepAdminResource(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth,
                                AdminEventBuilder events, LongSupplier clock) {
        this.session = session;
        this.realm = realm;
        this.auth = auth;
        this.events = events;
        this.clock = clock;
    }

    @POST
    @Path("users/{id}/bypass/{action}")
    @Consumes(MediaType.APPLICATION_JSON)
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> bypass(@PathParam("id") String id, @PathParam("action") String action,
                                      Map<String, Object> body) {
        BypassRules.Action act = switch (action) {
            case "grant" -> BypassRules.Action.GRANT;
            case "extend" -> BypassRules.Action.EXTEND;
            case "revoke" -> BypassRules.Action.REVOKE;
            default -> throw ErrorResponse.error("unknown action " + action, Response.Status.NOT_FOUND);
        };
        Map<String, Object> in = body == null ? Map.of() : body;
        BypassRules.Request req = new BypassRules.Request(act, number(in, "seconds"), text(in, "until"),
                text(in, "reason"), text(in, "by"), flag(in, "reset_device"), optionalFlag(in, "end_sessions"),
                flag(in, "break_glass"));
        UserModel user = lockedTarget(id);
        long now = clock.getAsLong();
        TwostepDecision.Policy policy =
                TwostepDecision.parsePolicy(realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE));
        List<CredentialModel> records =
                user.credentialManager().getStoredCredentialsByTypeStream(BypassCredentialProvider.TYPE).toList();
        Map<String, String> record = records.isEmpty() ? null
                : TwostepCondition.parseRecord(records.get(0).getCredentialData());
        if (!records.isEmpty() && record == null) {
            record = Map.of("marker", "damaged");
        }
        BypassRules.Decision decision = BypassRules.decide(now, policy, parties(user), req, user.getUsername(),
                record, records.size());
        if (!decision.allowed()) {
            throw ErrorResponse.error(decision.message(), Response.Status.fromStatusCode(decision.status()));
        }
        BypassRules.Plan plan = decision.plan();
        return inOneTransaction(() -> {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("action", plan.event());
            out.put("user_id", user.getId());
            out.put("username", user.getUsername());
            out.put("sessions_ended", endSessions(user, plan.sessions(), plan.fromMs(), plan.toMs()));
            if (plan.record() == null) {
                for (CredentialModel c : records) {
                    user.credentialManager().removeStoredCredentialById(c.getId());
                }
                BypassIndex.removeEntries(session, realm, user.getId(), null);
                GroupModel root = BypassIndex.root(session, realm);
                if (root != null && user.isMemberOf(root)) {
                    user.leaveGroup(root); // the index before 0.3 was membership of the root
                }
                out.put("until", plan.previousUntil());
            } else {
                int removed = plan.removeOtp() ? removeOtp(user) : 0;
                user.removeRequiredAction(TwostepDecision.CONFIGURE_TOTP);
                CredentialModel stored = writeRecord(user, plan.record(), now);
                BypassIndex.ensureBucket(session, realm,
                        BypassIndex.bucketName(TwostepDecision.parseTime(plan.record().get("until"))));
                GroupModel entry = BypassIndex.addEntry(session, realm, user.getId(), stored.getId(),
                        user.getUsername(), plan.record());
                BypassIndex.removeEntries(session, realm, user.getId(), entry.getId());
                out.put("until", plan.record().get("until"));
                out.put("granted_at", plan.record().get("granted_at"));
                out.put("previous_until", plan.previousUntil());
                out.put("devices_removed", removed);
                out.put("credential_id", stored.getId());
            }
            out.put("break_glass", req.breakGlass());
            Map<String, Object> extra = new LinkedHashMap<>();
            extra.put("by", plan.record() == null ? null : plan.record().get("by"));
            extra.put("previous_until", plan.previousUntil());
            extra.put("reset_device", plan.record() == null ? null : plan.record().get("reset_device"));
            extra.put("sessions_ended", out.get("sessions_ended"));
            extra.put("break_glass", req.breakGlass() ? Boolean.TRUE : null);
            String until = (String) out.get("until");
            String reason = plan.record() == null ? blankToNull(req.reason()) : plan.record().get("reason");
            TwostepAdminEvents.write(events, user, TwostepAdminEvents.representation(plan.event(), actorName(),
                    user, until, reason, extra));
            return out;
        });
    }

    // -- shared by every endpoint ---------------------------------------------------------------------

    /** The user, after Keycloak's permission check, with its row locked and read afresh. */
    UserModel lockedTarget(String id) {
        UserModel user = id == null ? null : session.users().getUserById(realm, id);
        if (user == null) {
            throw ErrorResponse.error("no user with id " + id + " in realm " + realm.getName(),
                    Response.Status.NOT_FOUND);
        }
        auth.users().requireManage(user);
        UserModel locked = UserRowLock.lockAndRead(session, realm, id);
        if (locked == null) {
            throw ErrorResponse.error(user.getUsername() + " is not stored in Keycloak's database",
                    Response.Status.CONFLICT);
        }
        return locked;
    }

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

    String actorName() {
        AdminAuth admin = auth.adminAuth();
        String name = admin.getUser() == null ? "?" : admin.getUser().getUsername();
        return name + "@" + admin.getRealm().getName();
    }

    /** Runs the writes; a failure marks the whole transaction rollback-only and is passed on. */
    <T> T inOneTransaction(java.util.function.Supplier<T> writes) {
        try {
            return writes.get();
        } catch (RuntimeException e) {
            session.getTransactionManager().setRollbackOnly();
            throw e;
        }
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

    int removeOtp(UserModel user) {
        List<String> ids = user.credentialManager().getStoredCredentialsByTypeStream(OTP).map(CredentialModel::getId)
                .toList();
        ids.forEach(cid -> user.credentialManager().removeStoredCredentialById(cid));
        return ids.size();
    }

    private CredentialModel writeRecord(UserModel user, Map<String, String> fields, long now) {
        for (String cid : user.credentialManager().getStoredCredentialsByTypeStream(BypassCredentialProvider.TYPE)
                .map(CredentialModel::getId).toList()) {
            user.credentialManager().removeStoredCredentialById(cid);
        }
        CredentialModel model = new CredentialModel();
        model.setType(BypassCredentialProvider.TYPE);
        model.setUserLabel("twostep bypass");
        model.setSecretData("{}");
        model.setCredentialData(json(new TreeMap<>(fields)));
        model.setCreatedDate(now);
        return user.credentialManager().createStoredCredential(model);
    }

    static String json(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    // -- request bodies -------------------------------------------------------------------------------

    static String text(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null || v instanceof String) {
            return (String) v;
        }
        throw bad(key + " must be a string");
    }

    static Long number(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Integer || v instanceof Long) {
            return ((Number) v).longValue();
        }
        throw bad(key + " must be a whole number");
    }

    static boolean flag(Map<String, Object> in, String key) {
        return Boolean.TRUE.equals(optionalFlag(in, key));
    }

    static Boolean optionalFlag(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null || v instanceof Boolean) {
            return (Boolean) v;
        }
        throw bad(key + " must be true or false");
    }

    static ErrorResponseException bad(String message) {
        return ErrorResponse.error(message, Response.Status.BAD_REQUEST);
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }

}
