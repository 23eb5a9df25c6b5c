package io.twostep.keycloak;

import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialProviderFactory;
import org.keycloak.models.KeycloakSession;

public final class OtpDisabledCredentialProviderFactory implements CredentialProviderFactory<OtpDisabledCredentialProvider> {

    @Override
    public String getId() {
        return OtpDisabledCredentialProvider.TYPE;
    }

    @Override
    public CredentialProvider<?> create(KeycloakSession session) {
        return new OtpDisabledCredentialProvider(session);
    }
}
