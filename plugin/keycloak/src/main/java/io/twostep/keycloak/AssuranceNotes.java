package io.twostep.keycloak;

import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.authenticators.util.AcrStore;
import org.keycloak.models.AuthenticationExecutionModel;
import org.keycloak.models.Constants;
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
            String kind = authSession.getUserSessionNotes().get(Assurance.NOTE_BYPASS_KIND);
            if (kind == null || kind.isEmpty()) {
                authSession.setUserSessionNote(Assurance.NOTE_BYPASS_KIND, Assurance.KIND_PASSWORD);
            }
        } catch (RuntimeException e) {
            LOG.debugf("twostep: bypass note not written (%s)", e.getClass().getSimpleName());
        }
    }

    /** The level the client asked for ({@code acr_values}, {@code claims}); none: -1. */
    static int requestedLevel(AuthenticationFlowContext context) {
        try {
            return new AcrStore(context.getSession(), context.getAuthenticationSession())
                    .getRequestedLevelOfAuthentication(context.getTopLevelFlow());
        } catch (RuntimeException e) {
            return Constants.NO_LOA;
        }
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
