package io.twostep.keycloak;

import org.keycloak.models.KeycloakSession;

/** The bypass record (docs/formats.md, provider mode): credentialData holds the record's fields. */
public final class BypassCredentialProvider extends RecordCredentialProvider {

    public static final String TYPE = "twostep-bypass";

    BypassCredentialProvider(KeycloakSession session) {
        super(session);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    String label() {
        return "twostep bypass";
    }
}
