package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.RequiredActionProviderModel;
import org.keycloak.models.SubjectCredentialManager;
import org.keycloak.models.UserModel;
import org.keycloak.sessions.AuthenticationSessionModel;

/**
 * matchCondition over hand-made stubs (no Keycloak, no Mockito): the inputs it gathers, the actions
 * it adds, and that nothing it meets makes it throw. A stub answers only the methods it is given;
 * any other call throws, which the condition must turn into "second factor required".
 */
class ConditionTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-01T20:00:00Z");
    private static final String POLICY = "{\"enforcement\":{\"mode\":\"all\",\"grace_days\":0},\"bypass_max_s\":86400}";
    private static final String RECORD = "{\"marker\":\"true\",\"until\":\"2026-12-02T08:00:00Z\","
            + "\"granted_at\":\"2026-12-01T08:00:00Z\",\"by\":\"admin\",\"reason\":\"lost phone\","
            + "\"extended\":\"0\",\"reset_device\":\"false\"}";

    @SuppressWarnings("unchecked")
    private static <T> T stub(Class<T> type, Map<String, Function<Object[], Object>> answers) {
        return (T) Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, m, args) -> {
            Function<Object[], Object> f = answers.get(m.getName());
            if (f == null) {
                if (m.getName().equals("toString")) {
                    return type.getSimpleName() + " stub";
                }
                throw new UnsupportedOperationException(type.getSimpleName() + "." + m.getName());
            }
            return f.apply(args);
        });
    }

    private static CredentialModel cred(String type, String data) {
        CredentialModel c = new CredentialModel();
        c.setType(type);
        c.setCredentialData(data);
        return c;
    }

    private static GroupModel group(String name, GroupModel parent) {
        return stub(GroupModel.class, Map.of("getName", a -> name, "getParent", a -> parent,
                "escapeSlashesInGroupPath", a -> false));
    }

    /** A login context: realm with the policy, a user with these credentials and groups. */
    private static final class Login {
        String policy = POLICY;
        List<CredentialModel> creds = new ArrayList<>();
        List<GroupModel> groups = new ArrayList<>();
        Long created = TwostepDecision.parseTime("2026-01-01T00:00:00Z");
        boolean noUser;
        boolean brokenCredentials;
        boolean brokenSession;
        String flowPath = "authenticate";
        String userId = "u-1";
        final Map<String, String> notes = new HashMap<>();
        final List<String> disabled = new ArrayList<>();
        final List<String> added = new ArrayList<>();
        final Map<String, String> userSessionNotes = new HashMap<>();

        /** Credentials of these types with empty data ({}). */
        Login holding(String... types) {
            for (String type : types) {
                creds.add(cred(type, "{}"));
            }
            return this;
        }

        Login with(String type, String data) {
            creds.add(cred(type, data));
            return this;
        }

        AuthenticationFlowContext context() {
            RealmModel realm = stub(RealmModel.class, Map.of("getAttribute", a -> policy, "getName", a -> "r",
                    "getRequiredActionProviderByAlias", a -> {
                        RequiredActionProviderModel m = new RequiredActionProviderModel();
                        m.setAlias((String) a[0]);
                        m.setEnabled(!disabled.contains(a[0]));
                        return m;
                    }));
            SubjectCredentialManager cm = stub(SubjectCredentialManager.class, Map.of(
                    "getStoredCredentialsByTypeStream", a -> {
                        if (brokenCredentials) {
                            throw new IllegalStateException("database gone");
                        }
                        return creds.stream().filter(c -> c.getType().equals(a[0]));
                    }));
            Map<String, Function<Object[], Object>> u = new HashMap<>();
            u.put("getId", a -> userId);
            u.put("getCreatedTimestamp", a -> created);
            u.put("credentialManager", a -> cm);
            u.put("getGroupsStream", a -> groups.stream());
            UserModel user = stub(UserModel.class, u);
            AuthenticationSessionModel auth = stub(AuthenticationSessionModel.class, Map.of(
                    "getAuthNote", a -> notes.get((String) a[0]),
                    "getUserSessionNotes", a -> userSessionNotes,
                    "setUserSessionNote", a -> userSessionNotes.put((String) a[0], (String) a[1]),
                    "addRequiredAction", a -> {
                        if (brokenSession) {
                            throw new IllegalStateException("session gone");
                        }
                        added.add((String) a[0]);
                        return null;
                    }));
            // No getEvent: EventBuilder is a class; the event detail is proven by the login tests.
            return stub(AuthenticationFlowContext.class, Map.of("getUser", a -> noUser ? null : user,
                    "getRealm", a -> realm, "getAuthenticationSession", a -> auth, "getFlowPath", a -> flowPath));
        }

        boolean match(long now) {
            return new TwostepCondition(() -> now).matchCondition(context());
        }
    }

    @Test
    void deviceWithoutCodesRunsTheSubflowAndAsksForCodes() {
        Login l = new Login().holding("otp");
        assertTrue(l.match(NOW));
        assertEquals(List.of("CONFIGURE_RECOVERY_AUTHN_CODES"), l.added);
    }

    @Test
    void validBypassSkipsUntilItsEndOnTheInjectedClock() {
        Login l = new Login().holding("otp", "recovery-authn-codes").with("twostep-bypass", RECORD);
        assertFalse(l.match(NOW));
        assertFalse(l.match(TwostepDecision.parseTime("2026-12-02T07:59:59Z")));
        assertTrue(l.match(TwostepDecision.parseTime("2026-12-02T08:00:00Z")));
        assertEquals(List.of(), l.added);
    }

    @Test
    void aBypassSignInLeavesItsEndAndKindForTheTokens() {
        Login l = new Login().holding("otp", "recovery-authn-codes").with("twostep-bypass", RECORD);
        assertFalse(l.match(NOW));
        assertEquals(String.valueOf(TwostepDecision.parseTime("2026-12-02T08:00:00Z") / 1000),
                l.userSessionNotes.get(Assurance.NOTE_BYPASS_UNTIL));
        assertEquals("password", l.userSessionNotes.get(Assurance.NOTE_BYPASS_KIND));
        // An access pass: the record's kind, and the second-factor subflow runs (the pass is asked there).
        Login p = new Login().holding("otp");
        p.creds.add(cred("twostep-bypass", RECORD.replace("\"marker\":\"true\",",
                "\"marker\":\"true\",\"kind\":\"pass\",\"pass_use\":\"once\",\"pass_used\":\"0\",")));
        assertTrue(p.match(NOW));
        assertEquals("pass", p.userSessionNotes.get(Assurance.NOTE_BYPASS_KIND));
        // No bypass: no note.
        Login n = new Login().holding("otp", "recovery-authn-codes");
        assertTrue(n.match(NOW));
        assertTrue(n.userSessionNotes.isEmpty());
    }

    @Test
    void twoBypassRecordsMeanNone() {
        Login l = new Login().holding("otp", "recovery-authn-codes").with("twostep-bypass", RECORD)
                .with("twostep-bypass", RECORD);
        assertTrue(l.match(NOW));
    }

    @Test
    void recordWithNonStringValuesIsNoRecord() {
        assertNull(TwostepCondition.parseRecord(RECORD.replace("\"extended\":\"0\"", "\"extended\":0")));
        assertNull(TwostepCondition.parseRecord("[]"));
        assertNull(TwostepCondition.parseRecord("{"));
        assertNull(TwostepCondition.parseRecord(null));
        assertEquals("lost phone", TwostepCondition.parseRecord(RECORD).get("reason"));
        Login l = new Login().holding("webauthn", "recovery-authn-codes")
                .with("twostep-bypass", RECORD.replace("\"by\":\"admin\"", "\"by\":[\"admin\"]"));
        assertTrue(l.match(NOW));
    }

    @Test
    void nothingConfiguredEnrollsInThisLogin() {
        Login l = new Login();
        assertFalse(l.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), l.added);
    }

    @Test
    void disabledOtpSetupRefusesInsteadOfLettingThePasswordIn() {
        Login l = new Login();
        l.disabled.add("CONFIGURE_TOTP");
        assertTrue(l.match(NOW), "enrollment impossible: the subflow runs (and refuses a user without a device)");
        assertEquals(List.of("CONFIGURE_RECOVERY_AUTHN_CODES"), l.added);

        Login codesOff = new Login();
        codesOff.disabled.add("CONFIGURE_RECOVERY_AUTHN_CODES");
        assertFalse(codesOff.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP"), codesOff.added);
    }

    @Test
    void groupScopeSeesParentPaths() {
        Login in = new Login();
        in.policy = "{\"enforcement\":{\"mode\":\"groups\",\"groups\":[\"staff\"],\"grace_days\":0}}";
        in.groups.add(group("berlin", group("staff", null)));
        assertFalse(in.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), in.added);

        Login out = new Login();
        out.policy = in.policy;
        out.groups.add(group("staffing", null));
        assertFalse(out.match(NOW));
        assertEquals(List.of(), out.added, "out of scope: nothing to set up");
    }

    @Test
    void damagedPolicyIsTheFailClosedDefault() {
        // A 12-hour window: fine under the realm's 1-day maximum, too long for the 1-hour default.
        Login l = new Login().holding("otp", "recovery-authn-codes").with("twostep-bypass", RECORD);
        l.policy = "{not json";
        assertTrue(l.match(NOW));
        l.policy = null;
        assertTrue(l.match(NOW));
    }

    @Test
    void failuresNeverThrowAndNeverSkip() {
        Login noUser = new Login();
        noUser.noUser = true;
        assertTrue(noUser.match(NOW));

        Login broken = new Login();
        broken.brokenCredentials = true;
        assertTrue(broken.match(NOW), "unreadable credentials: second factor");
        assertEquals(List.of(), broken.added);

        Login session = new Login();
        session.brokenSession = true;
        assertFalse(session.match(NOW), "the outcome stands when the actions cannot be added");

        Login noCreated = new Login();
        noCreated.created = null;
        noCreated.policy = "{\"enforcement\":{\"mode\":\"all\",\"grace_days\":7}}";
        assertFalse(noCreated.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), noCreated.added,
                "no creation time: the grace is long over");

        AuthenticationFlowContext nothing = stub(AuthenticationFlowContext.class, Map.of());
        assertTrue(new TwostepCondition(() -> NOW).matchCondition(nothing));
    }

    @Test
    void passwordGrantRefusesWhoMustEnrollAndSaysWhyInTheEvent() {
        Login l = new Login();
        l.flowPath = "token";
        assertFalse(l.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), l.added,
                "required actions make the token endpoint refuse");
        assertTrue(TwostepCondition.refusal(new TwostepDecision.Result(TwostepDecision.Outcome.ENROLL,
                l.added)).contains("must enroll"));

        Login disabled = new Login();
        disabled.flowPath = "token";
        disabled.disabled.add("CONFIGURE_TOTP");
        assertFalse(disabled.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), disabled.added,
                "a disabled action still refuses a password grant (it is never run there)");
    }

    @Test
    void passwordGrantRefusesASecurityKeyAndAsksAnOtpCode() {
        Login key = new Login().holding("webauthn", "recovery-authn-codes");
        key.flowPath = "token";
        assertFalse(key.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP"), key.added);
        assertTrue(TwostepCondition.refusal(new TwostepDecision.Result(TwostepDecision.Outcome.REFUSED,
                key.added)).contains("not an OTP device"));

        Login otp = new Login().holding("otp");
        otp.flowPath = "token";
        assertTrue(otp.match(NOW), "the code is asked");
        assertEquals(List.of(), otp.added, "backup codes are not asked in a password grant");

        Login bypassed = new Login().with("twostep-bypass", RECORD);
        bypassed.flowPath = "token";
        assertFalse(bypassed.match(NOW));
        assertEquals(List.of(), bypassed.added, "a bypass is the password alone");
    }

    @Test
    void trustedIdentityProviderFromTheBrokeredIdentity() {
        String trusting = "{\"enforcement\":{\"mode\":\"all\",\"grace_days\":0},\"trusted_idps\":[\"corp\"]}";
        Login l = new Login().holding("otp", "recovery-authn-codes");
        l.policy = trusting;
        l.notes.put("PBL_BROKERED_IDENTITY_CONTEXT", "{\"identityProviderId\":\"corp\",\"id\":\"x\"}");
        assertFalse(l.match(NOW));
        assertEquals("corp", TwostepCondition.brokeredBy(l.context().getAuthenticationSession()));

        Login other = new Login().holding("otp", "recovery-authn-codes");
        other.policy = trusting;
        other.notes.put("BROKERED_CONTEXT", "{\"identityProviderId\":\"partner\"}");
        assertTrue(other.match(NOW), "an identity provider the policy does not trust");

        Login damaged = new Login().holding("otp", "recovery-authn-codes");
        damaged.policy = trusting;
        damaged.notes.put("PBL_BROKERED_IDENTITY_CONTEXT", "{not json");
        assertTrue(damaged.match(NOW), "an unreadable note is no trusted login");
    }

    @Test
    void userNotImportedGetsItsGraceFromEnforceSince() {
        Login l = new Login();
        l.userId = "f:ldap-component:jdoe";
        l.created = NOW; // what Keycloak reports for a user it makes anew at every login
        l.policy = "{\"enforcement\":{\"mode\":\"all\",\"grace_days\":7},"
                + "\"enforce_since\":\"2026-11-23T20:00:00Z\"}";
        assertFalse(l.match(NOW));
        assertEquals(List.of("CONFIGURE_TOTP", "CONFIGURE_RECOVERY_AUTHN_CODES"), l.added, "grace over: enroll");

        Login local = new Login();
        local.created = NOW;
        local.policy = l.policy;
        assertFalse(local.match(NOW));
        assertEquals(List.of(), local.added, "a local user created now is in grace");
    }
}
