package io.twostep.keycloak;

import org.keycloak.models.KeycloakSession;

/** Who made a user's backup codes and when: credentialData {"by":..., "at":...}. */
public final class CodesProvenanceCredentialProvider extends RecordCredentialProvider {

    public static final String TYPE = "twostep-codes-provenance";

    CodesProvenanceCredentialProvider(KeycloakSession session) {
        super(session);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    String label() {
        return "twostep backup codes provenance";
    }
}
