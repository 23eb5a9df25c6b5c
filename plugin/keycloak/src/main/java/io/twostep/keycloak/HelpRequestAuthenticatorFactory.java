package io.twostep.keycloak;

import java.util.List;
import org.keycloak.Config;
import org.keycloak.authentication.Authenticator;
import org.keycloak.authentication.AuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers "ask an administrator" under the id docs/formats.md fixes. */
public final class HelpRequestAuthenticatorFactory implements AuthenticatorFactory {

    public static final String PROVIDER_ID = "twostep-help-request";
    private static final HelpRequestAuthenticator SINGLETON = new HelpRequestAuthenticator();
    private static final AuthenticationExecutionModel.Requirement[] CHOICES = {
        AuthenticationExecutionModel.Requirement.ALTERNATIVE, AuthenticationExecutionModel.Requirement.DISABLED,
    };

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "twostep - ask an administrator (I lost my phone)";
    }

    @Override
    public String getReferenceCategory() {
        // No credential type: the account console lists types an enabled authenticator refers to,
        // and a help request is not something the user manages there.
        return null;
    }

    @Override
    public boolean isConfigurable() {
        return true;
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
        return "Last alternative of the second-factor subflow: a user who passed the password step can ask "
                + "the admins for help (stores a twostep-help-request credential and adds the user to the "
                + "group twostep-help-requests). Never signs anyone in.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        ProviderConfigProperty max = new ProviderConfigProperty(HelpRequestRules.CONFIG_MAX_PER_HOUR,
                "Requests per hour (realm)", "New requests are refused while this many open requests were made "
                + "in the last hour; 0 = no limit.", ProviderConfigProperty.STRING_TYPE,
                Integer.toString(HelpRequestRules.DEFAULT_MAX_PER_HOUR));
        return List.of(max);
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
