package io.twostep.keycloak;

import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

public final class BypassCredentialProviderFactory implements CredentialProviderFactory<BypassCredentialProvider> {

    @Override
    public String getId() {
        return BypassCredentialProvider.TYPE;
    }

    @Override
    public CredentialProvider<?> create(KeycloakSession session) {
        return new BypassCredentialProvider(session);
    }
}
