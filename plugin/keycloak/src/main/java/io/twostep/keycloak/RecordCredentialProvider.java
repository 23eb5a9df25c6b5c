package io.twostep.keycloak;

import org.keycloak.credential.CredentialModel;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialTypeMetadata;
import org.keycloak.credential.CredentialTypeMetadataContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * A credential type that only carries a record (no secret, nothing to sign in with): at most one per
 * user, a new one replaces the old. Keycloak's admin API hands a {@code credentials[]} entry without
 * a {@code value} to the provider of its type ({@code createCredentialThroughProvider}); without a
 * provider the entry would be dropped silently.
 */
abstract class RecordCredentialProvider implements CredentialProvider<CredentialModel> {

    private final KeycloakSession session;

    RecordCredentialProvider(KeycloakSession session) {
        this.session = session;
    }

    abstract String label();

    @Override
    public CredentialModel createCredential(RealmModel realm, UserModel user, CredentialModel model) {
        // Remove every earlier one first (there should be at most one; more would make none count).
        user.credentialManager().getStoredCredentialsByTypeStream(getType()).map(CredentialModel::getId)
                .toList().forEach(id -> user.credentialManager().removeStoredCredentialById(id));
        model.setType(getType());
        if (model.getSecretData() == null || model.getSecretData().isEmpty()) {
            model.setSecretData("{}");
        }
        if (model.getUserLabel() == null || model.getUserLabel().isEmpty()) {
            model.setUserLabel(label());
        }
        if (model.getCreatedDate() == null) {
            model.setCreatedDate(org.keycloak.common.util.Time.currentTimeMillis());
        }
        return user.credentialManager().createStoredCredential(model);
    }

    @Override
    public boolean deleteCredential(RealmModel realm, UserModel user, String credentialId) {
        return user.credentialManager().removeStoredCredentialById(credentialId);
    }

    @Override
    public CredentialModel getCredentialFromModel(CredentialModel model) {
        return model;
    }

    @Override
    public CredentialTypeMetadata getCredentialTypeMetadata(CredentialTypeMetadataContext context) {
        // Not listed in the account console: no enabled authenticator refers to this type.
        // Not removeable: the record is the admins', not the user's. Keycloak's CredentialDeleteHelper
        // checks this for the Account API (DELETE /account/credentials/{id}) and for
        // kc_action=delete_credential:{id}; the admin REST (requireManage) does not, so twostep still
        // deletes them there.
        return CredentialTypeMetadata.builder().type(getType())
                .category(CredentialTypeMetadata.Category.TWO_FACTOR)
                .displayName(getType()).helpText(label()).iconCssClass("kcAuthenticatorDefaultClass")
                .removeable(false).build(session);
    }
}
