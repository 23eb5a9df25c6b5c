package io.twostep.keycloak;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.ws.rs.core.MultivaluedMap;
import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;
import java.util.stream.Stream;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.common.util.Time;
import org.keycloak.credential.CredentialModel;
import org.keycloak.credential.CredentialProvider;
import org.keycloak.forms.login.LoginFormsProvider;
import org.keycloak.models.AuthenticatorConfigModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * "I lost my phone: ask an administrator" (docs/formats.md, "Help requests"). The last ALTERNATIVE
 * of the second-factor subflow, so it is reached only after the password step (it requires a user)
 * and Keycloak's "Try another way" lists it after the user's own credentials.
 *
 * <p>It never signs anyone in: no path calls {@code context.success()} or {@code attempted()}; every
 * outcome, an exception included, is a page (a challenge), so the flow cannot go on past it.
 *
 * <p>It is deliberately not a {@code CredentialValidator}: Keycloak orders the options of "Try another
 * way" by the user's credentials first, so a validator of {@code twostep-help-request} could become the
 * default choice for a user with an open request. As a plain authenticator it always comes after them.
 */
public final class HelpRequestAuthenticator extends SecondFactorOption {

    public static final String GROUP = "twostep-help-requests";
    public static final String TEMPLATE = "twostep-help-request.ftl";
    static final String FIELD_MESSAGE = "message";
    /** Second factors a user can lose; only their owners are offered the option (see configuredFor). */
    static final List<String> FACTOR_TYPES = List.of("otp", "webauthn", "webauthn-passwordless", "recovery-authn-codes");

    private static final Logger LOG = Logger.getLogger(HelpRequestAuthenticator.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final LongSupplier clock;

    public HelpRequestAuthenticator() {
        this(Time::currentTimeMillis);
    }

    HelpRequestAuthenticator(LongSupplier clock) {
        this.clock = clock;
    }

    @Override
    public void authenticate(AuthenticationFlowContext context) {
        try {
            UserModel user = context.getUser();
            if (user == null) {
                refuse(context, "no user in the flow");
                return;
            }
            Optional<Long> open = openRequest(user);
            long now = clock.getAsLong();
            if (open.isPresent() && !HelpRequestLimits.expired(now, open.get(), limits(context.getRealm()).expiryDays())) {
                context.challenge(openPage(context, user, open.get()));
            } else {
                context.challenge(formPage(context, "", null));
            }
        } catch (RuntimeException e) {
            failed(context, e);
        }
    }

    @Override
    public void action(AuthenticationFlowContext context) {
        try {
            UserModel user = context.getUser();
            if (user == null) {
                refuse(context, "no user in the flow");
                return;
            }
            MultivaluedMap<String, String> form = context.getHttpRequest().getDecodedFormParameters();
            String raw = form == null ? null : form.getFirst(FIELD_MESSAGE);
            String message = HelpRequestRules.clean(raw);
            if (!HelpRequestRules.fits(message)) {
                context.challenge(formPage(context, message, "twostepHelpTooLong"));
                return;
            }
            RealmModel realm = context.getRealm();
            KeycloakSession session = context.getSession();
            long now = clock.getAsLong();
            HelpRequestLimits.Limits limits = limits(realm);
            Optional<Long> open = openRequest(user);
            if (open.isPresent() && HelpRequestLimits.expired(now, open.get(), limits.expiryDays())) {
                close(session, realm, user); // expired: it no longer blocks, and it goes now
                LOG.infof("twostep: expired help request of user %s removed at a new filing", user.getId());
                open = Optional.empty();
            }
            int max = HelpRequestRules.maxPerHour(config(context));
            String address = context.getConnection() == null ? null : context.getConnection().getRemoteAddr();
            String userKey = HelpRequestCounts.userKey(realm, user.getId());
            String addressKey = HelpRequestCounts.addressKey(realm, address);
            HelpRequestRules.Verdict verdict = open.isPresent() ? HelpRequestRules.Verdict.ALREADY_OPEN
                    : HelpRequestRules.decide(now, false, recentRequests(session, realm, now, max), max,
                            HelpRequestCounts.read(session, userKey), HelpRequestCounts.read(session, addressKey),
                            limits);
            switch (verdict) {
                case ALREADY_OPEN -> context.challenge(openPage(context, user, open.orElse(now)));
                case USER_LIMITED, ADDRESS_LIMITED, RATE_LIMITED -> {
                    // The address is not logged (personal data); which limit is.
                    LOG.warnf("twostep: help request of user %s in realm %s refused: %s", user.getId(),
                            realm.getName(), verdict);
                    context.challenge(page(context, "limited").createForm(TEMPLATE));
                }
                default -> {
                    store(session, realm, user, now, message);
                    HelpRequestCounts.record(session, userKey, now, HelpRequestLimits.USER_WINDOW_MS,
                            limits.perUserPerDay());
                    HelpRequestCounts.record(session, addressKey, now, HelpRequestLimits.ADDRESS_WINDOW_MS,
                            limits.perAddressPerHour());
                    LOG.infof("twostep: help request stored for user %s in realm %s", user.getId(), realm.getName());
                    HelpRequestMail.send(session, realm, user, now, address);
                    context.challenge(page(context, "sent").createForm(TEMPLATE));
                }
            }
        } catch (RuntimeException e) {
            failed(context, e);
        }
    }

    /** The index group first, then the credential: a crash in between leaves a listed, damaged entry
     * (formats.md), never a request nobody can find. The transaction is rolled back on failure anyway. */
    static void store(KeycloakSession session, RealmModel realm, UserModel user, long now, String message) {
        GroupModel group = indexGroup(session, realm, true);
        if (!user.isMemberOf(group)) {
            user.joinGroup(group);
        }
        Map<String, String> data = new LinkedHashMap<>();
        data.put("asked_at", TwostepDecision.formatTime(now));
        data.put("message", message);
        data.put("notified_at", "");
        CredentialModel model = new CredentialModel();
        model.setType(HelpRequestCredentialProvider.TYPE);
        try {
            model.setCredentialData(JSON.writeValueAsString(data));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("cannot write a help request", e);
        }
        model.setSecretData("{}");
        model.setUserLabel("twostep help request");
        model.setCreatedDate(now);
        @SuppressWarnings("rawtypes")
        CredentialProvider provider = session.getProvider(CredentialProvider.class, HelpRequestCredentialProvider.TYPE);
        if (provider == null) {
            throw new IllegalStateException("no credential provider " + HelpRequestCredentialProvider.TYPE);
        }
        @SuppressWarnings("unchecked")
        CredentialModel created = provider.createCredential(realm, user, model);
        if (created == null) {
            throw new IllegalStateException("the help request was not stored");
        }
    }

    static HelpRequestLimits.Limits limits(RealmModel realm) {
        return HelpRequestLimits.fromPolicy(realm.getAttribute(TwostepCondition.POLICY_ATTRIBUTE));
    }

    /** Close the user's request: the credential, then the index membership (formats.md). */
    public static void close(KeycloakSession session, RealmModel realm, UserModel user) {
        user.credentialManager().getStoredCredentialsByTypeStream(HelpRequestCredentialProvider.TYPE)
                .map(CredentialModel::getId).toList()
                .forEach(id -> user.credentialManager().removeStoredCredentialById(id));
        GroupModel group = indexGroup(session, realm, false);
        if (group != null && user.isMemberOf(group)) {
            user.leaveGroup(group);
        }
    }

    public static GroupModel indexGroup(KeycloakSession session, RealmModel realm, boolean create) {
        Optional<GroupModel> found;
        try (Stream<GroupModel> top = session.groups().getTopLevelGroupsStream(realm)) {
            found = top.filter(g -> GROUP.equals(g.getName())).findFirst();
        }
        if (found.isPresent() || !create) {
            return found.orElse(null);
        }
        return session.groups().createGroup(realm, GROUP);
    }

    /** asked_at of the user's open request: present when a request exists (an unreadable time reads as
     * now: the request is still open, the user is still told so). */
    static Optional<Long> openRequest(UserModel user) {
        List<CredentialModel> all = user.credentialManager()
                .getStoredCredentialsByTypeStream(HelpRequestCredentialProvider.TYPE).toList();
        if (all.isEmpty()) {
            return Optional.empty();
        }
        Long at = askedAt(all.get(0));
        return Optional.of(at == null ? Long.MIN_VALUE : at);
    }

    static Long askedAt(CredentialModel c) {
        Map<String, String> fields = TwostepCondition.parseRecord(c.getCredentialData());
        return fields == null ? null : TwostepDecision.parseTime(fields.get("asked_at"));
    }

    /**
     * asked_at of the realm's open requests (members of the index group), read only as far as the
     * decision needs: it stops once {@code max} of them are from the last hour.
     */
    static List<Long> recentRequests(KeycloakSession session, RealmModel realm, long now, int max) {
        List<Long> out = new ArrayList<>();
        if (max <= 0) {
            return out;
        }
        GroupModel group = indexGroup(session, realm, false);
        if (group == null) {
            return out;
        }
        long recent = 0;
        try (Stream<UserModel> members = session.users().getGroupMembersStream(realm, group)) {
            Iterator<UserModel> it = members.iterator();
            while (it.hasNext() && recent < max) {
                Optional<Long> at = openRequest(it.next());
                if (at.isPresent() && at.get() != Long.MIN_VALUE) {
                    out.add(at.get());
                    if (at.get() > now - HelpRequestRules.WINDOW_MS) {
                        recent++;
                    }
                }
            }
        }
        return out;
    }

    private static Map<String, String> config(AuthenticationFlowContext context) {
        AuthenticatorConfigModel model = context.getAuthenticatorConfig();
        return model == null ? null : model.getConfig();
    }

    private LoginFormsProvider page(AuthenticationFlowContext context, String mode) {
        return context.form().setAttribute("twostepHelpMode", mode)
                .setAttribute("twostepHelpMax", Integer.toString(HelpRequestRules.MAX_MESSAGE));
    }

    private Response formPage(AuthenticationFlowContext context, String message, String error) {
        LoginFormsProvider form = page(context, "form").setAttribute("twostepHelpMessage", message);
        if (error != null) {
            form.addError(new org.keycloak.models.utils.FormMessage(FIELD_MESSAGE, error,
                    Integer.toString(HelpRequestRules.MAX_MESSAGE)));
        }
        return form.createForm(TEMPLATE);
    }

    private Response openPage(AuthenticationFlowContext context, UserModel user, long askedAt) {
        LoginFormsProvider form = page(context, "open");
        if (askedAt != Long.MIN_VALUE) {
            Locale locale = context.getSession().getContext().resolveLocale(user);
            HelpRequestRules.Ago ago = HelpRequestRules.ago(clock.getAsLong(), askedAt);
            form.setAttribute("twostepHelpAskedAt", HelpRequestRules.localTime(askedAt, locale))
                    .setAttribute("twostepHelpAgoKey", ago.key())
                    .setAttribute("twostepHelpAgoA", ago.args().length > 0 ? ago.args()[0] : "")
                    .setAttribute("twostepHelpAgoB", ago.args().length > 1 ? ago.args()[1] : "");
        }
        return form.createForm(TEMPLATE);
    }

    private void refuse(AuthenticationFlowContext context, String why) {
        LOG.warnf("twostep: help request refused: %s", why);
        context.challenge(page(context, "error").createForm(TEMPLATE));
    }

    /** Fail closed: nothing half-written stays, and the user gets a page, never a session. */
    private void failed(AuthenticationFlowContext context, RuntimeException e) {
        LOG.errorf(e, "twostep: help request failed");
        try {
            context.getSession().getTransactionManager().setRollbackOnly();
        } catch (RuntimeException ignored) {
            // Nothing more to undo.
        }
        try {
            context.challenge(page(context, "error").createForm(TEMPLATE));
        } catch (RuntimeException again) {
            // Not even a page: Keycloak's error page, still no session.
            context.failure(org.keycloak.authentication.AuthenticationFlowError.INTERNAL_ERROR);
        }
    }

    /**
     * Offered only to a user who has a second factor to lose. With this true for everyone, Keycloak's
     * "Condition - user configured" would run the second-factor subflow for users with nothing set up.
     */
    @Override
    boolean offeredTo(UserModel user) {
        return FACTOR_TYPES.stream().anyMatch(t ->
                user.credentialManager().getStoredCredentialsByTypeStream(t).findAny().isPresent());
    }
}
