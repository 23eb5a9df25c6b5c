package io.twostep.keycloak.admin;

import org.keycloak.Config;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.services.resources.admin.ext.AdminRealmResourceProvider;
import org.keycloak.services.resources.admin.ext.AdminRealmResourceProviderFactory;

/** The admin REST extension {@code twostep}: {@code /admin/realms/{realm}/twostep/...} (docs/provider.md). */
public final class TwostepAdminResourceProviderFactory implements AdminRealmResourceProviderFactory {

    public static final String ID = "twostep";
    private static final TwostepAdminResourceProvider PROVIDER = new TwostepAdminResourceProvider();

    @Override
    public AdminRealmResourceProvider create(KeycloakSession session) {
        return PROVIDER;
    }

    @Override
    public void init(Config.Scope config) {
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
    }

    @Override
    public void close() {
    }

    @Override
    public String getId() {
        return ID;
    }
}
