package io.twostep.keycloak;

import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongSupplier;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.authentication.AuthenticationFlowError;
import org.keycloak.authentication.CredentialValidator;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.credential.CredentialModel;
import org.keycloak.events.Errors;
import org.keycloak.forms.login.LoginFormsProvider;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.utils.FormMessage;

/**
 * "Access pass" (docs/provider.md): an ALTERNATIVE of the second-factor subflow, offered only to a
 * user whose bypass record is of kind {@code pass} with a pass still usable in its window
 * ({@link #configuredFor}). The page says who granted the pass and until when, and takes the pass in
 * place of the one-time code. A {@code once} pass is used up in the transaction that accepts it, under
 * the user's row lock (two tabs cannot both use it). A wrong pass is a failed login for Keycloak's
 * brute-force protection, as a wrong code is in Keycloak's OTP form.
 */
public class AccessPassAuthenticator extends SecondFactorOption
        implements CredentialValidator<BypassCredentialProvider> {

    private static final Logger LOG = Logger.getLogger(AccessPassAuthenticator.class);
    public static final String TEMPLATE = "twostep-access-pass.ftl";
    static final String FIELD = "pass";

    private final LongSupplier clock;

    public AccessPassAuthenticator(LongSupplier clock) {
        this.clock = clock;
    }

    /** The user's record when it holds a pass usable now; null otherwise (never throws). */
    Map<String, String> livePass(RealmModel realm, UserModel user) {
        try {
            Map<String, String> record = TwostepCondition.readRecord(user.credentialManager());
            TwostepDecision.Policy policy =
                    TwostepDecision.parsePolicy(realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE));
            return TwostepDecision.bypassValid(clock.getAsLong(), policy, record) && AccessPass.live(record)
                    ? record : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        Map<String, String> record = livePass(context.getRealm(), context.getUser());
        if (record == null) {
            // Spent or over: Keycloak goes on to the next alternative (the user's own device). The
            // option may still be listed while the record exists; it never signs anyone in.
            context.attempted();
            return;
        }
        context.challenge(page(context, record, null));
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
        String typed = form == null ? null : form.getFirst(FIELD);
        UserModel user = context.getUser();
        // Locked and read afresh: a once pass accepted in another tab a moment ago is seen as used.
        UserModel locked = UserRowLock.lockAndRead(context.getSession(), context.getRealm(), user.getId());
        UserModel u = locked != null ? locked : user;
        Map<String, String> record = livePass(context.getRealm(), u);
        List<CredentialModel> stored = u.credentialManager()
                .getStoredCredentialsByTypeStream(BypassCredentialProvider.TYPE).toList();
        if (record == null || stored.size() != 1 || !AccessPass.matches(stored.get(0).getSecretData(), typed)) {
            context.getEvent().user(user).detail(TwostepCondition.EVENT_DETAIL, record == null
                    ? "access pass refused: no usable pass (window over, used, or none)" : "access pass refused: wrong pass")
                    .error(Errors.INVALID_USER_CREDENTIALS);
            context.failureChallenge(AuthenticationFlowError.INVALID_CREDENTIALS,
                    page(context, record, record == null ? "twostepPassNotUsable" : "twostepPassWrong"));
            return;
        }
        CredentialModel cred = stored.get(0);
        Map<String, String> used = new TreeMap<>(record);
        used.put("pass_used", String.valueOf(count(record.get("pass_used")) + 1));
        cred.setCredentialData(json(used));
        u.credentialManager().updateStoredCredential(cred);
        if ("once".equals(record.get("pass_use")) && u.credentialManager().getStoredCredentialsStream()
                .noneMatch(c -> "otp".equals(c.getType()) || "webauthn".equals(c.getType()))) {
            // A once pass is for setting up the new device: in this very sign-in, or the pass is spent
            // with nothing to sign in with next time.
            context.getAuthenticationSession().addRequiredAction(TwostepDecision.CONFIGURE_TOTP);
        }
        context.getEvent().detail(TwostepCondition.EVENT_DETAIL, "access pass " + record.get("pass_use")
                + ", bypass until " + record.get("until"));
        context.success();
    }

    private static int count(String text) {
        try {
            return Math.max(0, Integer.parseInt(text == null ? "0" : text));
        } catch (NumberFormatException e) {
            return 1; // unreadable: counts as used (a once pass is then over)
        }
    }

    private static String json(Map<String, String> fields) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(fields);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private Response page(AuthenticationFlowContext context, Map<String, String> record, String error) {
        LoginFormsProvider form = context.form();
        if (record != null) {
            Locale locale = context.getSession().getContext().resolveLocale(context.getUser());
            Long until = TwostepDecision.parseTime(record.get("until"));
            form.setAttribute("twostepPassBy", record.getOrDefault("by", ""))
                    .setAttribute("twostepPassUntil", until == null ? "" : HelpRequestRules.localTime(until, locale))
                    .setAttribute("twostepPassUse", record.getOrDefault("pass_use", "once"));
        } else {
            form.setAttribute("twostepPassUse", "none");
        }
        if (error != null) {
            form.addError(new FormMessage(FIELD, error));
        }
        return form.createForm(TEMPLATE);
    }

    /**
     * The bypass record's type: Keycloak lists the option under "Try another way" only for users who
     * hold a record, ordered by the user's credentials (their own device first).
     */
    @Override
    public BypassCredentialProvider getCredentialProvider(KeycloakSession session) {
        return (BypassCredentialProvider) session.getProvider(CredentialProvider.class,
                BypassCredentialProvider.TYPE);
    }

    /**
     * A user holding a record of kind {@code pass} (usable or not: the page then says it cannot be
     * used, rather than Keycloak skipping the choice silently). Whether it signs in is decided in
     * {@link #action}, by the window and the uses; the condition runs the subflow only for a usable one.
     */
    @Override
    boolean offeredTo(UserModel user) {
        Map<String, String> record = TwostepCondition.readRecord(user.credentialManager());
        boolean held = record != null && TwostepDecision.KIND_PASS.equals(record.get("kind"));
        LOG.debugf("twostep: access pass record for %s: %s", user.getId(), held);
        return held;
    }
}
