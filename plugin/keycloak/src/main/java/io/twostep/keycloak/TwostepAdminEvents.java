package io.twostep.keycloak;

import java.util.LinkedHashMap;
import java.util.Map;
import org.keycloak.events.admin.OperationType;
import org.keycloak.events.admin.ResourceType;
import org.keycloak.models.UserModel;
import org.keycloak.services.resources.admin.AdminEventBuilder;

/**
 * The one way twostep writes Keycloak admin events: operation ACTION on resource type USER, resource
 * path {@code twostep/users/<user id>/<what>} (e.g. {@code twostep/users/4f1.../bypass.grant}), and a
 * representation with who acted, on whom, what, until and why. Never a secret (no codes, no
 * credential data). The event is stored with the request's transaction (it is not written when the
 * change rolls back) when the realm has admin events on; the representation when "include
 * representation" is on as well.
 */
public final class TwostepAdminEvents {

    private TwostepAdminEvents() {
    }

    /** The representation: fixed keys first, then {@code extra} (null values left out). */
    public static Map<String, Object> representation(String what, String who, UserModel target, String until,
                                                     String reason, Map<String, ?> extra) {
        Map<String, Object> rep = new LinkedHashMap<>();
        rep.put("what", what);
        rep.put("who", who);
        rep.put("whom", target.getUsername());
        rep.put("user_id", target.getId());
        if (until != null) {
            rep.put("until", until);
        }
        if (reason != null) {
            rep.put("reason", reason);
        }
        if (extra != null) {
            extra.forEach((k, v) -> {
                if (v != null) {
                    rep.put(k, v);
                }
            });
        }
        return rep;
    }

    public static void write(AdminEventBuilder events, UserModel target, Map<String, Object> representation) {
        events.operation(OperationType.ACTION).resource(ResourceType.USER)
                .resourcePath("twostep", "users", target.getId(), String.valueOf(representation.get("what")))
                .representation(representation).success();
    }
}
