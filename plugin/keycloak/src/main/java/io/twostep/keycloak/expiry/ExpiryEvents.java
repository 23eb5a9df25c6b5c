package io.twostep.keycloak.expiry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashSet;
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

/**
 * The one admin event an end writes, sent as Keycloak's AdminEventBuilder sends one (to the event
 * store when the realm keeps admin events, and to the realm's and the global listeners), inside the
 * end's own transaction: it is stored only if the end commits. The task has no signed-in admin:
 * the auth details name the realm only, and {@code actor} in the details says who acted.
 * (To be unified with the admin REST extension's {@code TwostepAdminEvents}.)
 */
final class ExpiryEvents {

    static final String ACTOR = "twostep expiry task";
    private static final Logger LOG = Logger.getLogger(ExpiryEvents.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private ExpiryEvents() {
    }

    /** {@code resourcePath} e.g. {@code twostep/users/<id>/bypass}; {@code details}: no secrets. */
    static void send(KeycloakSession session, RealmModel realm, String resourcePath, Map<String, String> details,
                     long nowMs) {
        Map<String, String> all = new TreeMap<>(details);
        all.put("actor", ACTOR);
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
        event.setResourcePath(resourcePath);
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
