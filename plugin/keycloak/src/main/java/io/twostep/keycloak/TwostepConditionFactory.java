package io.twostep.keycloak;

import java.util.List;
import org.keycloak.Config;
import org.keycloak.authentication.AuthenticationFlowCallbackFactory;
import org.keycloak.authentication.authenticators.conditional.ConditionalAuthenticator;
import org.keycloak.authentication.authenticators.conditional.ConditionalAuthenticatorFactory;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.provider.ProviderConfigProperty;

/** Registers the condition under the id docs/formats.md fixes. */
public final class TwostepConditionFactory implements ConditionalAuthenticatorFactory,
        AuthenticationFlowCallbackFactory {

    public static final String PROVIDER_ID = "twostep-condition-second-factor";
    private static final TwostepCondition SINGLETON = new TwostepCondition();
    private static final AuthenticationExecutionModel.Requirement[] CHOICES = {
        AuthenticationExecutionModel.Requirement.REQUIRED, AuthenticationExecutionModel.Requirement.DISABLED,
    };

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "Condition - twostep second factor required";
    }

    @Override
    public String getReferenceCategory() {
        // Spelled out rather than the interface constant, which not every 26.x minor declares alike.
        return "condition";
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
        return "True when the user must give a second factor: no valid twostep bypass and an OTP device or "
                + "backup codes. Adds CONFIGURE_TOTP / CONFIGURE_RECOVERY_AUTHN_CODES per the realm's "
                + "twostep.policy. Reads the policy realm attribute and the twostep-bypass credential.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.of();
    }

    @Override
    public ConditionalAuthenticator getSingleton() {
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
