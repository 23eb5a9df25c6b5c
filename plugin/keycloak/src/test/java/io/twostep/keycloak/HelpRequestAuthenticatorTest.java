package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakTransactionManager;

/**
 * Fail closed: whatever breaks inside the authenticator, the login never succeeds. The context is a
 * plain proxy (no mocking library): every call is recorded, the chosen ones throw.
 */
class HelpRequestAuthenticatorTest {

    private final List<String> calls = new ArrayList<>();

    @SuppressWarnings("unchecked")
    private <T> T proxy(Class<T> type, java.util.function.Function<String, Object> answer) {
        return (T) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {type}, (p, m, args) -> {
            calls.add(type.getSimpleName() + "." + m.getName());
            if (m.getName().equals("toString")) {
                return type.getSimpleName();
            }
            return answer.apply(m.getName());
        });
    }

    private AuthenticationFlowContext brokenContext() {
        KeycloakTransactionManager tx = proxy(KeycloakTransactionManager.class, n -> null);
        KeycloakSession session = proxy(KeycloakSession.class, n -> n.equals("getTransactionManager") ? tx : null);
        return proxy(AuthenticationFlowContext.class, n -> switch (n) {
            case "getSession" -> session;
            case "getUser", "form", "getHttpRequest", "getRealm" -> throw new IllegalStateException("broken " + n);
            default -> null;
        });
    }

    private void assertNeverSignedIn() {
        assertFalse(calls.contains("AuthenticationFlowContext.success"), calls.toString());
        assertFalse(calls.contains("AuthenticationFlowContext.attempted"), calls.toString());
        assertFalse(calls.contains("AuthenticationFlowContext.setUser"), calls.toString());
    }

    @Test
    void anExceptionInAuthenticateEndsInAFailureNotASession() {
        new HelpRequestAuthenticator(() -> 0L).authenticate(brokenContext());
        assertNeverSignedIn();
        assertTrue(calls.contains("KeycloakTransactionManager.setRollbackOnly"), calls.toString());
        assertTrue(calls.contains("AuthenticationFlowContext.failure"), calls.toString());
    }

    @Test
    void anExceptionInActionEndsInAFailureNotASession() {
        new HelpRequestAuthenticator(() -> 0L).action(brokenContext());
        assertNeverSignedIn();
        assertTrue(calls.contains("KeycloakTransactionManager.setRollbackOnly"), calls.toString());
        assertTrue(calls.contains("AuthenticationFlowContext.failure"), calls.toString());
    }

    @Test
    void noUserInTheFlowIsRefused() {
        List<String> seen = new ArrayList<>();
        AuthenticationFlowContext context = proxy(AuthenticationFlowContext.class, n -> {
            seen.add(n);
            if (n.equals("form")) {
                throw new IllegalStateException("no page in this test");
            }
            return null; // getUser() == null
        });
        new HelpRequestAuthenticator(() -> 0L).action(context);
        assertNeverSignedIn();
        assertFalse(seen.contains("getHttpRequest"), "nothing is read from the request without a user");
        assertEquals(1, calls.stream().filter("AuthenticationFlowContext.failure"::equals).count(), calls.toString());
    }

    @Test
    void onlyUsersWithASecondFactorAreOffered() {
        assertEquals(List.of("otp", "webauthn", "webauthn-passwordless", "recovery-authn-codes"),
                HelpRequestAuthenticator.FACTOR_TYPES);
        assertTrue(new HelpRequestAuthenticator().requiresUser());
    }
}
