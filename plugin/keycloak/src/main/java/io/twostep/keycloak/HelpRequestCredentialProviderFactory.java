package io.twostep.keycloak;

import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

public final class HelpRequestCredentialProviderFactory
        implements CredentialProviderFactory<HelpRequestCredentialProvider> {

    @Override
    public String getId() {
        return HelpRequestCredentialProvider.TYPE;
    }

    @Override
    public CredentialProvider<?> create(KeycloakSession session) {
        return new HelpRequestCredentialProvider(session);
    }
}
