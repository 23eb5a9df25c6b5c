package io.twostep.keycloak;

import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

public final class CodesProvenanceCredentialProviderFactory
        implements CredentialProviderFactory<CodesProvenanceCredentialProvider> {

    @Override
    public String getId() {
        return CodesProvenanceCredentialProvider.TYPE;
    }

    @Override
    public CredentialProvider<?> create(KeycloakSession session) {
        return new CodesProvenanceCredentialProvider(session);
    }
}
