package io.twostep.keycloak;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.authenticators.util.AuthenticatorUtils;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.Constants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAttributeMapperHelper;
import org.keycloak.protocol.oidc.mappers.OIDCIDTokenMapper;
import org.keycloak.protocol.oidc.mappers.UserInfoTokenMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.IDToken;

/**
 * "twostep assurance": the standard {@code amr} claim (RFC 8176: {@code pwd}, {@code otp},
 * {@code hwk}, {@code mfa}) from the authenticators the sign-in completed, without any second factor
 * when a bypass let it in, and {@code twostep_bypass} (the bypass end, epoch seconds) with
 * {@code twostep_bypass_kind} for such a sign-in. Reads the user session's notes
 * ({@link Assurance#NOTE_BYPASS_UNTIL}), which the condition writes. Never throws: a failure leaves
 * {@code amr} as {@code ["pwd"]} at most.
 */
public final class TwostepAssuranceMapper extends AbstractOIDCProtocolMapper
        implements OIDCAccessTokenMapper, OIDCIDTokenMapper, UserInfoTokenMapper {

    public static final String PROVIDER_ID = "twostep-assurance-mapper";
    private static final Logger LOG = Logger.getLogger(TwostepAssuranceMapper.class);
    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        OIDCAttributeMapperHelper.addIncludeInTokensConfig(CONFIG, TwostepAssuranceMapper.class);
    }

    @Override
    public String getId() {
        return PROVIDER_ID;
    }

    @Override
    public String getDisplayType() {
        return "twostep assurance (amr, bypass)";
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getHelpText() {
        return "amr without a second factor for a sign-in through a twostep bypass, and twostep_bypass "
                + "(its end, epoch seconds)";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return List.copyOf(CONFIG);
    }

    @Override
    public int getPriority() {
        return 100; // after Keycloak's own amr mapper, should a realm also have it: ours is the last word
    }

    @Override
    protected void setClaim(IDToken token, ProtocolMapperModel mappingModel, UserSessionModel userSession,
                            KeycloakSession keycloakSession, ClientSessionContext clientSessionCtx) {
        String until = note(userSession, Assurance.NOTE_BYPASS_UNTIL);
        boolean bypassed = until != null;
        List<String> completed = new ArrayList<>();
        try {
            RealmModel realm = userSession.getRealm();
            Map<String, Integer> executions = AuthenticatorUtils.parseCompletedExecutions(
                    userSession.getNote(Constants.AUTHENTICATORS_COMPLETED));
            for (String executionId : executions.keySet()) {
                AuthenticationExecutionModel execution = realm.getAuthenticationExecutionById(executionId);
                if (execution != null) {
                    completed.add(execution.getAuthenticator());
                }
            }
        } catch (RuntimeException e) {
            LOG.debugf("twostep: completed executions unreadable (%s); amr from nothing", e.getClass().getSimpleName());
            completed.clear();
        }
        token.getOtherClaims().put(Assurance.CLAIM_AMR, Assurance.amr(completed, bypassed));
        if (bypassed) {
            Long end = null;
            try {
                end = Long.valueOf(until);
            } catch (NumberFormatException e) {
                LOG.debug("twostep: unreadable bypass end note");
            }
            // A bypass whose end is unreadable still says "bypass": 0 is no end an application can trust.
            token.getOtherClaims().put(Assurance.CLAIM_BYPASS, end == null ? 0L : end);
            String kind = note(userSession, Assurance.NOTE_BYPASS_KIND);
            token.getOtherClaims().put(Assurance.CLAIM_BYPASS_KIND, kind == null ? Assurance.KIND_PASSWORD : kind);
        }
    }

    private static String note(UserSessionModel userSession, String name) {
        try {
            String v = userSession.getNote(name);
            return v == null || v.isEmpty() ? null : v;
        } catch (RuntimeException e) {
            return null;
        }
    }
}
