package io.twostep.keycloak;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import org.jboss.logging.Logger;
import org.keycloak.events.EventListenerProvider;
import org.keycloak.events.EventListenerProviderFactory;
import org.keycloak.events.EventStoreProvider;
import org.keycloak.events.admin.AdminEvent;
import org.keycloak.events.admin.AuthDetails;
import org.keycloak.events.admin.OperationType;
import org.keycloak.events.admin.ResourceType;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.resources.admin.AdminEventBuilder;

/**
 * The one way twostep writes Keycloak admin events: resource type USER, resource path
 * {@code twostep/users/<user id>/<what>}, a representation that is never a secret (no codes, no
 * credential data). Stored with the transaction of the change (not when it rolls back) when the
 * realm keeps admin events; the representation when "include representation" is on as well; sent to
 * the realm's and the global event listeners. Two senders, because only a request has a signed-in
 * admin:
 * <ul>
 * <li>{@link #write}: the admin extension, through the request's {@link AdminEventBuilder} (its
 * {@code authDetails} name the acting account); operation ACTION, representation by
 * {@link #representation} (docs/provider.md, "Admin events");
 * <li>{@link #writeAsTask}: the expiry task, which has no request: operation DELETE, the auth details
 * name the realm only, the details (also the representation) say {@code actor=}{@link #TASK_ACTOR}
 * (docs/provider.md, "The expiry task").
 * </ul>
 */
public final class TwostepAdminEvents {

    /** Who acts when the expiry task ends something (also the {@code by} of its claims). */
    public static final String TASK_ACTOR = "twostep expiry task";
    private static final Logger LOG = Logger.getLogger(TwostepAdminEvents.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private TwostepAdminEvents() {
    }

    public static String resourcePath(String userId, String what) {
        return "twostep/users/" + userId + "/" + what;
    }

    /** The admin extension's representation: fixed keys first, then {@code extra} (null values left out). */
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

    /** An admin's change (path element {@code what} of the representation). */
    public static void write(AdminEventBuilder events, UserModel target, Map<String, Object> representation) {
        events.operation(OperationType.ACTION).resource(ResourceType.USER)
                .resourcePath(resourcePath(target.getId(), String.valueOf(representation.get("what"))))
                .representation(representation).success();
    }

    /**
     * An end by the expiry task, as AdminEventBuilder sends one (store, then listeners), at
     * {@code nowMs}. {@code details}: no secrets; {@code actor} is added.
     */
    public static void writeAsTask(KeycloakSession session, RealmModel realm, String userId, String what,
                                   Map<String, String> details, long nowMs) {
        writeAs(session, realm, userId, what, details, nowMs, TASK_ACTOR);
    }

    /** The same for another actor of Keycloak's own (for example {@code twostep sign-in}). */
    public static void writeAs(KeycloakSession session, RealmModel realm, String userId, String what,
                               Map<String, String> details, long nowMs, String actor) {
        Map<String, String> all = new TreeMap<>(details);
        all.put("actor", actor);
        AdminEvent event = new AdminEvent();
        event.setId(UUID.randomUUID().toString());
        event.setTime(nowMs);
        event.setRealmId(realm.getId());
        event.setRealmName(realm.getName());
        AuthDetails auth = new AuthDetails();
        auth.setRealmId(realm.getId());
        auth.setRealmName(realm.getName());
        event.setAuthDetails(auth);
        event.setOperationType(OperationType.DELETE);
        event.setResourceType(ResourceType.USER);
        event.setResourcePath(resourcePath(userId, what));
        event.setDetails(all);
        try {
            event.setRepresentation(JSON.writeValueAsString(all));
        } catch (JsonProcessingException e) {
            event.setRepresentation(null);
        }
        boolean withRepresentation = realm.isAdminEventsDetailsEnabled();
        if (realm.isAdminEventsEnabled()) {
            EventStoreProvider store = session.getProvider(EventStoreProvider.class);
            if (store != null) {
                store.onEvent(event, withRepresentation);
            }
        }
        Set<String> listeners = new HashSet<>(realm.getEventsListenersStream().toList());
        session.getKeycloakSessionFactory().getProviderFactoriesStream(EventListenerProvider.class)
                .map(f -> (EventListenerProviderFactory) f)
                .filter(f -> listeners.contains(f.getId()) || f.isGlobal())
                .forEach(f -> {
                    try {
                        f.create(session).onEvent(event, withRepresentation);
                    } catch (RuntimeException e) {
                        LOG.warnf("twostep: event listener %s failed: %s", f.getId(), e.getClass().getSimpleName());
                    }
                });
    }
}
