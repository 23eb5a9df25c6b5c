package io.twostep.keycloak;

import java.util.List;
import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.common.util.Time;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers "access pass" under the id docs/formats.md fixes. */
public final class AccessPassAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "twostep-access-pass";
    private static final AccessPassAuthenticator SINGLETON = new AccessPassAuthenticator(Time::currentTimeMillis);
    private static final AuthenticationExecutionModel.Requirement[] CHOICES = {
        AuthenticationExecutionModel.Requirement.ALTERNATIVE, AuthenticationExecutionModel.Requirement.DISABLED,
    };

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "twostep - access pass (temporary, granted by an admin)";
    }

    @Override
    public String getReferenceCategory() {
        // No credential type of its own: the pass lives in the bypass record, which the account
        // console does not list.
        return null;
    }

    @Override
    public boolean isConfigurable() {
        return false;
    }

    @Override
    public AuthenticationExecutionModel.Requirement[] getRequirementChoices() {
        return CHOICES.clone();
    }

    @Override
    public boolean isUserSetupAllowed() {
        return false;
    }

    @Override
    public String getHelpText() {
        return "Alternative of the second-factor subflow: a user holding an access pass an admin granted "
                + "(a twostep-bypass record of kind pass, in its window) gives the pass instead of the code.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.of();
    }

    @Override
    public Authenticator create(KeycloakSession session) {
        return SINGLETON;
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
}
