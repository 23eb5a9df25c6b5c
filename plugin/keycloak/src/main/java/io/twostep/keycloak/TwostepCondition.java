package io.twostep.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.stream.Collectors;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowCallback;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.authenticators.conditional.ConditionalAuthenticator;
import org.keycloak.common.util.Time;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.AuthenticationFlowModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RequiredActionProviderModel;
import org.keycloak.models.SubjectCredentialManager;
import org.keycloak.models.UserModel;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.sessions.AuthenticationSessionModel;
import org.keycloak.storage.StorageId;
import org.keycloak.utils.KeycloakSessionUtil;

/**
 * "Condition - twostep second factor required": true (run the second-factor subflow) only when the
 * decision is REQUIRED; adds the decision's required actions to this login. It never throws: in a
 * conditional subflow an exception ends the login on an error page, and anything it cannot read
 * counts as "no bypass".
 */
public final class TwostepCondition implements ConditionalAuthenticator, AuthenticationFlowCallback {

    public static final String POLICY_ATTRIBUTE = "twostep.policy";
    private static final Logger LOG = Logger.getLogger(TwostepCondition.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final LongSupplier clock;

    /** Keycloak's own clock (it moves with Keycloak's test time offset). */
    public TwostepCondition() {
        this(Time::currentTimeMillis);
    }

    public TwostepCondition(LongSupplier clock) {
        this.clock = clock;
    }

    /** The flow path of the token endpoint (a password grant): no form can be shown there. */
    static final String TOKEN_PATH = "token";
    /** The event detail that says why twostep refused a password grant (docs/formats.md, "Doors"). */
    public static final String EVENT_DETAIL = "twostep";
    /** Auth notes holding the brokered identity in the first- and post-broker-login flows. */
    static final String[] BROKER_NOTES = {"PBL_BROKERED_IDENTITY_CONTEXT", "BROKERED_CONTEXT"};

    @Override
    public boolean matchCondition(AuthenticationFlowContext context) {
        TwostepDecision.Result result = decide(context);
        if (result.outcome() == TwostepDecision.Outcome.GRACE) {
            // Let in with the password alone (at any door): filed so the expiry task ends it when
            // grace is over.
            noteGrace(context);
        }
        if (isDirectGrant(context)) {
            return directGrant(context, result);
        }
        if (result.outcome() == TwostepDecision.Outcome.BYPASS || result.outcome() == TwostepDecision.Outcome.PASS) {
            AssuranceNotes.noteBypass(context);
        }
        DisabledOtp.purgeAtSignIn(context, clock.getAsLong());
        boolean run = Assurance.runSecondFactor(result.outcome() == TwostepDecision.Outcome.REQUIRED
                || result.outcome() == TwostepDecision.Outcome.PASS, AssuranceNotes.requestedLevel(context));
        for (String action : result.requiredActions()) {
            if (!actionEnabled(context, action)) {
                if (TwostepDecision.CONFIGURE_TOTP.equals(action)) {
                    // Keycloak silently skips a disabled required action, which would let the password
                    // alone in: run the subflow instead, which refuses a user with nothing set up.
                    LOG.warnf("twostep: required action %s is disabled in realm %s; refusing to enroll, "
                            + "the second factor is required", action, realmName(context));
                    run = true;
                } else {
                    LOG.warnf("twostep: required action %s is disabled in realm %s; not asked", action,
                            realmName(context));
                }
                continue;
            }
            try {
                context.getAuthenticationSession().addRequiredAction(action);
            } catch (RuntimeException e) {
                // Could not add it: the login goes on with the outcome decided.
                LOG.warnf("twostep: could not add required action %s: %s", action, e.getClass().getSimpleName());
            }
        }
        return run;
    }

    private static void noteGrace(AuthenticationFlowContext context) {
        try {
            io.twostep.keycloak.expiry.GraceIndex.note(context.getSession(), context.getRealm(), context.getUser());
        } catch (RuntimeException e) {
            LOG.debugf("twostep: grace sign-in not indexed (%s)", e.getClass().getSimpleName());
        }
    }

    static boolean isDirectGrant(AuthenticationFlowContext context) {
        try {
            return TOKEN_PATH.equals(context.getFlowPath());
        } catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * A password grant: any required action on the login makes Keycloak's token endpoint answer
     * "Account is not fully set up" (invalid_grant), which is the refusal for ENROLL and REFUSED. The
     * actions are added whether enabled or not (they are never run here: they only refuse), and the
     * event gets the reason in its {@code twostep} detail.
     */
    private static boolean directGrant(AuthenticationFlowContext context, TwostepDecision.Result result) {
        TwostepDecision.Outcome outcome = result.outcome();
        boolean refuse = outcome == TwostepDecision.Outcome.ENROLL || outcome == TwostepDecision.Outcome.REFUSED
                || !result.requiredActions().isEmpty();
        if (!refuse) {
            return outcome == TwostepDecision.Outcome.REQUIRED;
        }
        try {
            context.getEvent().detail(EVENT_DETAIL, refusal(result));
        } catch (RuntimeException e) {
            LOG.debugf("twostep: could not add the event detail: %s", e.getClass().getSimpleName());
        }
        try {
            for (String action : result.requiredActions()) {
                context.getAuthenticationSession().addRequiredAction(action);
            }
            return false;
        } catch (RuntimeException e) {
            // Could not mark the login as refused: run the second factor, which a user without an OTP
            // device cannot pass.
            LOG.warnf("twostep: could not refuse a password grant (%s); second factor required",
                    e.getClass().getSimpleName());
            return true;
        }
    }

    /** Why a password grant is refused, for the event's {@code twostep} detail. */
    static String refusal(TwostepDecision.Result result) {
        return result.outcome() == TwostepDecision.Outcome.REFUSED
                ? "refused: the user's second factor is not an OTP device, which a password grant cannot ask"
                : "refused: the user must enroll a second factor (" + String.join(", ", result.requiredActions())
                        + "), which a password grant cannot do; sign in with a browser";
    }

    /**
     * The alias of the identity provider a brokered login came through, from the brokered identity
     * Keycloak keeps in the login (first- and post-broker-login flows); null when there is none.
     */
    static String brokeredBy(AuthenticationSessionModel authSession) {
        for (String note : BROKER_NOTES) {
            try {
                String text = authSession.getAuthNote(note);
                if (text == null || text.isEmpty()) {
                    continue;
                }
                JsonNode node = JSON.readTree(text);
                JsonNode idp = node == null ? null : node.get("identityProviderId");
                if (idp != null && idp.isTextual() && !idp.asText().isEmpty()) {
                    return idp.asText();
                }
            } catch (Exception e) {
                // Unreadable: not a login through a trusted identity provider (asks for more).
                LOG.debugf("twostep: unreadable brokered identity note %s", note);
            }
        }
        return null;
    }

    /** Whether the realm has this required action and it is on; unknown counts as off (fail closed). */
    private static boolean actionEnabled(AuthenticationFlowContext context, String alias) {
        try {
            RequiredActionProviderModel model = context.getRealm().getRequiredActionProviderByAlias(alias);
            return model != null && model.isEnabled();
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static String realmName(AuthenticationFlowContext context) {
        try {
            return context.getRealm().getName();
        } catch (RuntimeException e) {
            return "?";
        }
    }

    /** The decision for this login; never throws. */
    TwostepDecision.Result decide(AuthenticationFlowContext context) {
        UserModel user = null;
        try {
            user = context.getUser();
            RealmModel realm = context.getRealm();
            if (user == null || realm == null) {
                // No user yet (a flow wired before the username step): nothing to skip for.
                LOG.debug("twostep: no user or realm in the flow context; second factor required");
                return new TwostepDecision.Result(TwostepDecision.Outcome.REQUIRED, List.of());
            }
            TwostepDecision.Policy policy = TwostepDecision.parsePolicy(realm.getAttribute(POLICY_ATTRIBUTE));
            if (!policy.intact()) {
                LOG.warnf("twostep: realm %s has no readable %s; acting on the fail-closed default",
                        realm.getName(), POLICY_ATTRIBUTE);
            }
            List<String> paths = user.getGroupsStream().map(KeycloakModelUtils::buildGroupPath)
                    .collect(Collectors.toList());
            boolean inScope = TwostepDecision.inScope(policy, paths);
            SubjectCredentialManager creds = user.credentialManager();
            boolean hasOtp = has(creds, "otp");
            boolean hasDevice = hasOtp || has(creds, "webauthn");
            boolean hasCodes = has(creds, "recovery-authn-codes");
            Map<String, String> record = readRecord(creds);
            AuthenticationSessionModel authSession = context.getAuthenticationSession();
            TwostepDecision.Door door = new TwostepDecision.Door(
                    authSession == null ? null : brokeredBy(authSession), isDirectGrant(context), hasOtp);
            TwostepDecision.Result result = TwostepDecision.decide(clock.getAsLong(), policy,
                    createdAt(user), inScope, record, hasDevice, hasCodes, door);
            LOG.debugf("twostep: user %s: %s %s", user.getId(), result.outcome(), result.requiredActions());
            return result;
        } catch (RuntimeException e) {
            // Any failure reading inputs is "no bypass": the second factor runs.
            LOG.warnf("twostep: could not read the inputs for user %s (%s); second factor required",
                    user == null ? "?" : safeId(user), e.getClass().getSimpleName());
            return new TwostepDecision.Result(TwostepDecision.Outcome.REQUIRED, List.of());
        }
    }

    /**
     * The user's creation time, or null where Keycloak cannot keep it: a federated user that is not
     * imported (its id is not a local one) is made anew at every login, "created" now each time.
     */
    static Long createdAt(UserModel user) {
        return StorageId.isLocalStorage(user.getId()) ? user.getCreatedTimestamp() : null;
    }

    private static String safeId(UserModel user) {
        try {
            return user.getId();
        } catch (RuntimeException e) {
            return "?";
        }
    }

    private static boolean has(SubjectCredentialManager creds, String type) {
        return creds.getStoredCredentialsByTypeStream(type).findAny().isPresent();
    }

    /**
     * The bypass record: the credentialData of the one {@code twostep-bypass} credential as a map of
     * strings; null when there is none, more than one, or it is not a JSON object of strings.
     */
    public static Map<String, String> readRecord(SubjectCredentialManager creds) {
        List<CredentialModel> all = creds.getStoredCredentialsByTypeStream(BypassCredentialProvider.TYPE)
                .collect(Collectors.toList());
        if (all.size() != 1) {
            if (all.size() > 1) {
                LOG.warn("twostep: more than one bypass record on a user; none counts");
            }
            return null;
        }
        return parseRecord(all.get(0).getCredentialData());
    }

    public static Map<String, String> parseRecord(String credentialData) {
        if (credentialData == null) {
            return null;
        }
        try {
            JsonNode node = JSON.readTree(credentialData);
            if (node == null || !node.isObject()) {
                return null;
            }
            Map<String, String> out = new HashMap<>();
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                if (!e.getValue().isTextual()) {
                    return null; // "exactly ... strings": a number or object is a damaged record
                }
                out.put(e.getKey(), e.getValue().asText());
            }
            return out;
        } catch (Exception e) {
            return null;
        }
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        // A condition shows no form.
    }

    /**
     * The second-factor subflow succeeded: the level of authentication is the second factor's, but
     * only when a second factor really completed in it (not an authenticator that stands in for one).
     */
    @Override
    public void onParentFlowSuccess(AuthenticationFlowContext context) {
        AssuranceNotes.secondFactorDone(context);
    }

    /** The login succeeded: an essential request for the second factor's level not reached is refused. */
    @Override
    public void onTopFlowSuccess(AuthenticationFlowModel topFlow) {
        AssuranceNotes.refuseUnfulfilled(KeycloakSessionUtil.getKeycloakSession(), topFlow);
    }

    @Override
    public boolean requiresUser() {
        return true;
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
        // Required actions are added per login in matchCondition, never stored on the user.
    }

    @Override
    public void close() {
    }
}
