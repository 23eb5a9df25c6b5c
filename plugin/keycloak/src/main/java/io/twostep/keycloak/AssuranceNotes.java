package io.twostep.keycloak;

import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.AuthenticationFlowException;
import org.keycloak.authentication.AuthenticatorUtil;
import org.keycloak.authentication.authenticators.util.AcrStore;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.AuthenticationFlowModel;
import org.keycloak.models.Constants;
import org.keycloak.models.KeycloakSession;
import org.keycloak.services.messages.Messages;
import org.keycloak.sessions.AuthenticationSessionModel;
import org.keycloak.sessions.CommonClientSessionModel;

/** The condition's side of {@link Assurance}: session notes and Keycloak's level. Never throws. */
final class AssuranceNotes {

    private static final Logger LOG = Logger.getLogger(AssuranceNotes.class);

    private AssuranceNotes() {
    }

    /** A bypass lets this sign-in in: its end and kind go to the user session, for the mapper. */
    static void noteBypass(AuthenticationFlowContext context) {
        try {
            AuthenticationSessionModel authSession = context.getAuthenticationSession();
            Map<String, String> record = TwostepCondition.readRecord(context.getUser().credentialManager());
            Long until = Assurance.untilSeconds(record);
            authSession.setUserSessionNote(Assurance.NOTE_BYPASS_UNTIL, String.valueOf(until == null ? 0L : until));
            // The record says which kind let this sign-in in (an access pass or the password alone).
            String kind = record == null ? null : record.get("kind");
            authSession.setUserSessionNote(Assurance.NOTE_BYPASS_KIND,
                    kind == null || kind.isEmpty() ? Assurance.KIND_PASSWORD : kind);
        } catch (RuntimeException e) {
            LOG.debugf("twostep: bypass note not written (%s)", e.getClass().getSimpleName());
        }
    }

    /**
     * The level the client asked for ({@code acr_values}, {@code claims}); none: -1. When it asks for
     * the second factor's level, the condition's top-flow callback is registered for this login, so
     * that an essential request is refused even when the second-factor subflow does not run (a user
     * with no device has none to run: {@code conditional-user-configured} skips it).
     */
    static int requestedLevel(AuthenticationFlowContext context) {
        try {
            AuthenticationSessionModel authSession = context.getAuthenticationSession();
            int level = new AcrStore(context.getSession(), authSession)
                    .getRequestedLevelOfAuthentication(context.getTopLevelFlow());
            if (level >= Assurance.LOA_SECOND_FACTOR) {
                AuthenticatorUtil.setAuthCallbacksFactoryIds(authSession, TwostepConditionFactory.PROVIDER_ID);
            }
            return level;
        } catch (RuntimeException e) {
            return Constants.NO_LOA;
        }
    }

    /**
     * The whole login succeeded: a client that made the second factor's level essential
     * ({@code claims} with {@code "essential": true}) and did not get it is refused, as Keycloak's own
     * level-of-authentication condition refuses it ({@code acrNotFulfilled}). Requested but not
     * essential: the token says the level reached ({@code acr} 1), Keycloak's rule too.
     */
    static void refuseUnfulfilled(KeycloakSession session, AuthenticationFlowModel topFlow) {
        AuthenticationSessionModel authSession;
        AcrStore acr;
        try {
            authSession = session.getContext().getAuthenticationSession();
            acr = new AcrStore(session, authSession);
            if (!acr.isLevelOfAuthenticationForced() || acr.isLevelOfAuthenticationSatisfiedFromCurrentAuthentication(topFlow)) {
                return;
            }
        } catch (RuntimeException e) {
            LOG.warnf("twostep: could not read the requested level (%s); refused", e.getClass().getSimpleName());
            throw new AuthenticationFlowException(AuthenticationFlowError.GENERIC_AUTHENTICATION_ERROR,
                    "twostep: requested level unreadable", Messages.ACR_NOT_FULFILLED);
        }
        throw new AuthenticationFlowException(AuthenticationFlowError.GENERIC_AUTHENTICATION_ERROR,
                "twostep: the second factor was requested as essential and not given (requested "
                        + acr.getRequestedLevelOfAuthentication(topFlow) + ", reached "
                        + acr.getLevelOfAuthenticationFromCurrentAuthentication() + ")", Messages.ACR_NOT_FULFILLED);
    }

    /**
     * The subflow succeeded: when one of its second factors completed, this login reached
     * {@link Assurance#LOA_SECOND_FACTOR} and no longer counts as a bypass.
     */
    static void secondFactorDone(AuthenticationFlowContext context) {
        try {
            AuthenticationSessionModel authSession = context.getAuthenticationSession();
            Map<String, CommonClientSessionModel.ExecutionStatus> status = authSession.getExecutionStatus();
            String parent = context.getExecution().getParentFlow();
            boolean done = context.getRealm().getAuthenticationExecutionsStream(parent)
                    .filter(e -> status.get(e.getId()) == CommonClientSessionModel.ExecutionStatus.SUCCESS)
                    .map(AuthenticationExecutionModel::getAuthenticator)
                    .anyMatch(Assurance::isSecondFactor);
            if (!done) {
                return;
            }
            new AcrStore(context.getSession(), authSession).setLevelAuthenticatedToCurrentRequest(
                    Assurance.LOA_SECOND_FACTOR);
            authSession.setUserSessionNote(Assurance.NOTE_BYPASS_UNTIL, "");
            authSession.setUserSessionNote(Assurance.NOTE_BYPASS_KIND, "");
        } catch (RuntimeException e) {
            LOG.debugf("twostep: level not raised (%s)", e.getClass().getSimpleName());
        }
    }
}
