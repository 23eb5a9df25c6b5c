package io.twostep.keycloak;

import org.keycloak.credential.CredentialTypeMetadata;
import org.keycloak.credential.CredentialTypeMetadataContext;
import org.keycloak.models.KeycloakSession;

/** The bypass record (docs/formats.md, provider mode): credentialData holds the record's fields. */
public final class BypassCredentialProvider extends RecordCredentialProvider {

    public static final String TYPE = "twostep-bypass";

    private final KeycloakSession keycloak;

    BypassCredentialProvider(KeycloakSession session) {
        super(session);
        this.keycloak = session;
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    String label() {
        return "twostep bypass";
    }

    /**
     * What Keycloak's "Try another way" shows for the access-pass authenticator, which validates this
     * type (so the option is listed only to users holding a bypass record): the theme's words for it.
     */
    @Override
    public CredentialTypeMetadata getCredentialTypeMetadata(CredentialTypeMetadataContext context) {
        return CredentialTypeMetadata.builder().type(getType())
                .category(CredentialTypeMetadata.Category.TWO_FACTOR)
                .displayName(AccessPassAuthenticatorFactory.PROVIDER_ID + "-display-name")
                .helpText(AccessPassAuthenticatorFactory.PROVIDER_ID + "-help-text")
                .iconCssClass("kcAuthenticatorDefaultClass").removeable(false).build(keycloak);
    }
}
