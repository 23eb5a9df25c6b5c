package io.twostep.keycloak;

import org.keycloak.models.KeycloakSession;

/**
 * A user's open request for help ("I lost my phone", docs/formats.md): a message to the admins,
 * never something to sign in with. Neither reader of the sign-in decision looks at it.
 */
public final class HelpRequestCredentialProvider extends RecordCredentialProvider {

    public static final String TYPE = "twostep-help-request";

    HelpRequestCredentialProvider(KeycloakSession session) {
        super(session);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    String label() {
        return "twostep help request";
    }
}
