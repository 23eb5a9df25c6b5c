package io.twostep.keycloak.admin;

import org.keycloak.common.util.Time;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.services.resources.admin.AdminEventBuilder;
import org.keycloak.services.resources.admin.ext.AdminRealmResourceProvider;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;

/** Hands each admin request under {@code /admin/realms/{realm}/twostep} to a {@link TwostepAdminResource}. */
public final class TwostepAdminResourceProvider implements AdminRealmResourceProvider {

    @Override
    public Object getResource(KeycloakSession session, RealmModel realm, AdminPermissionEvaluator auth,
                              AdminEventBuilder adminEvent) {
        return new TwostepAdminResource(session, realm, auth, adminEvent, Time::currentTimeMillis);
    }

    @Override
    public void close() {
    }
}
