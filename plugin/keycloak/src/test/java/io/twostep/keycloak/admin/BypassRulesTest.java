package io.twostep.keycloak.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.twostep.keycloak.TwostepDecision;
import io.twostep.keycloak.admin.BypassRules.Action;
import io.twostep.keycloak.admin.BypassRules.Parties;
import io.twostep.keycloak.admin.BypassRules.Request;
import io.twostep.keycloak.admin.BypassRules.Sessions;
import java.lang.reflect.Proxy;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakTransactionManager;

/** The rules of the admin endpoints as a table of cases, and the all-or-nothing of their writes. */
class BypassRulesTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-01T20:00:00Z") + 400; // not a whole second
    private static final TwostepDecision.Policy POLICY = TwostepDecision.parsePolicy(
            "{\"enforcement\":{\"mode\":\"all\",\"grace_days\":0},\"bypass_max_s\":86400}");
    private static final Parties OK = new Parties(false, List.of());

    private static Map<String, String> record(String granted, String until) {
        Map<String, String> r = new HashMap<>();
        r.put("marker", "true");
        r.put("granted_at", granted);
        r.put("until", until);
        r.put("by", "boss@acme via web");
        r.put("reason", "trip");
        r.put("extended", "2");
        r.put("reset_device", "true");
        return r;
    }

    private static final Map<String, String> ACTIVE = record("2026-12-01T19:00:00Z", "2026-12-01T21:00:00Z");
    private static final Map<String, String> EXPIRED = record("2026-12-01T17:00:00Z", "2026-12-01T19:00:00Z");

    private static Request grant(Long seconds, String until, String reason) {
        return new Request(Action.GRANT, seconds, until, reason, "hilde@acme via cli", false, null, false);
    }

    private record Case(String name, Parties parties, Request req, Map<String, String> rec, int records,
                        int status) {
    }

    @TestFactory
    Stream<DynamicTest> refusalsAndAllowances() {
        Request extend = new Request(Action.EXTEND, 7200L, null, "more", "x", false, null, false);
        Request revoke = new Request(Action.REVOKE, null, null, "", "x", false, null, false);
        List<Case> cases = List.of(
                new Case("grant, nothing there", OK, grant(3600L, null, "trip"), null, 0, 200),
                new Case("self", new Parties(true, List.of()), grant(3600L, null, "trip"), null, 0, 403),
                new Case("self revoke", new Parties(true, List.of()), revoke, ACTIVE, 1, 403),
                new Case("privileged target", new Parties(false, List.of("realm-admin")),
                        grant(3600L, null, "trip"), null, 0, 403),
                new Case("no reason", OK, grant(3600L, null, "  "), null, 0, 400),
                new Case("no by", OK, new Request(Action.GRANT, 3600L, null, "r", " ", false, null, false), null, 0,
                        400),
                new Case("both seconds and until", OK, grant(3600L, "2026-12-01T21:00:00Z", "r"), null, 0, 400),
                new Case("neither", OK, grant(null, null, "r"), null, 0, 400),
                new Case("malformed until", OK, grant(null, "2026-12-01 21:00", "r"), null, 0, 400),
                new Case("until in the past", OK, grant(null, "2026-12-01T19:59:59Z", "r"), null, 0, 400),
                new Case("under 5 minutes", OK, grant(299L, null, "r"), null, 0, 400),
                new Case("exactly 5 minutes", OK, grant(300L, null, "r"), null, 0, 200),
                new Case("the policy maximum", OK, grant(86400L, null, "r"), null, 0, 200),
                new Case("over the policy maximum", OK, grant(86401L, null, "r"), null, 0, 400),
                new Case("zero seconds", OK, grant(0L, null, "r"), null, 0, 400),
                new Case("grant over an active bypass", OK, grant(3600L, null, "r"), ACTIVE, 1, 409),
                new Case("grant over an expired one", OK, grant(3600L, null, "r"), EXPIRED, 1, 200),
                new Case("grant over two records (none counts)", OK, grant(3600L, null, "r"), ACTIVE, 2, 200),
                new Case("extend an active one", OK, extend, ACTIVE, 1, 200),
                new Case("extend nothing", OK, extend, null, 0, 400),
                new Case("extend an expired one", OK, extend, EXPIRED, 1, 400),
                new Case("extend past the maximum from its start", OK,
                        new Request(Action.EXTEND, 86000L, null, "more", "x", false, null, false), ACTIVE, 1, 400),
                new Case("reset device but keep sessions", OK,
                        new Request(Action.GRANT, 3600L, null, "r", "x", true, false, false), null, 0, 400),
                new Case("revoke an active one", OK, revoke, ACTIVE, 1, 200),
                new Case("revoke an expired one (marker still true)", OK, revoke, EXPIRED, 1, 200),
                new Case("revoke nothing", OK, revoke, null, 0, 404),
                new Case("revoke a damaged record", OK, revoke, Map.of("marker", "damaged"), 1, 404));
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> {
            BypassRules.Decision d = BypassRules.decide(NOW, POLICY, c.parties(), c.req(), "carol", c.rec(),
                    c.records());
            assertEquals(c.status(), d.status(), String.valueOf(d.message()));
            assertEquals(c.status() == 200, d.allowed());
        }));
    }

    @Test
    void grantWritesTheRecordInWholeSeconds() {
        BypassRules.Plan p = BypassRules.decide(NOW, POLICY, OK, grant(3600L, null, " trip "), "carol", null, 0).plan();
        assertEquals("bypass.grant", p.event());
        assertEquals(Map.of("marker", "true", "granted_at", "2026-12-01T20:00:00Z", "until", "2026-12-01T21:00:00Z",
                "by", "hilde@acme via cli", "reason", "trip", "extended", "0", "reset_device", "false"), p.record());
        assertEquals(Sessions.NONE, p.sessions());
        assertFalse(p.removeOtp());
    }

    @Test
    void extendKeepsItsStartAndCounts() {
        Request ext = new Request(Action.EXTEND, 7200L, null, "more", "x", false, null, false);
        BypassRules.Plan p = BypassRules.decide(NOW, POLICY, OK, ext, "carol", ACTIVE, 1).plan();
        assertEquals("2026-12-01T19:00:00Z", p.record().get("granted_at"));
        assertEquals("2026-12-01T22:00:00Z", p.record().get("until"));
        assertEquals("3", p.record().get("extended"));
        assertEquals("true", p.record().get("reset_device"));
        assertEquals("2026-12-01T21:00:00Z", p.previousUntil());
    }

    @Test
    void resetDeviceEndsEverySession() {
        Request r = new Request(Action.GRANT, 3600L, null, "lost", "x", true, null, false);
        BypassRules.Plan p = BypassRules.decide(NOW, POLICY, OK, r, "carol", null, 0).plan();
        assertTrue(p.removeOtp());
        assertEquals(Sessions.ALL, p.sessions());
        assertEquals("true", p.record().get("reset_device"));
    }

    @Test
    void aGrantOverAnOldRecordEndsTheOldWindowsSessions() {
        BypassRules.Plan p = BypassRules.decide(NOW, POLICY, OK, grant(3600L, null, "r"), "carol", EXPIRED, 1).plan();
        assertEquals(Sessions.WINDOW, p.sessions());
        assertEquals(TwostepDecision.parseTime("2026-12-01T17:00:00Z") - BypassRules.SESSION_SKEW_MS, p.fromMs());
    }

    @Test
    void revokeEndsTheWindowsSessionsAndRemovesTheRecord() {
        Request r = new Request(Action.REVOKE, null, null, "", "x", false, null, false);
        BypassRules.Plan p = BypassRules.decide(NOW, POLICY, OK, r, "carol", ACTIVE, 1).plan();
        assertNull(p.record());
        assertEquals(Sessions.WINDOW, p.sessions());
        Request keep = new Request(Action.REVOKE, null, null, "", "x", false, false, false);
        assertEquals(Sessions.NONE, BypassRules.decide(NOW, POLICY, OK, keep, "carol", ACTIVE, 1).plan().sessions());
    }

    @Test
    void theFailClosedPolicyAllowsOneHour() {
        Request r = grant(3601L, null, "r");
        assertEquals(400, BypassRules.decide(NOW, TwostepDecision.FAIL_CLOSED, OK, r, "carol", null, 0).status());
    }

    /** A failure after a write (the index, the event) marks the request's transaction rollback-only. */
    @Test
    void aFailingWriteRollsTheWholeChangeBack() {
        AtomicInteger rollbacks = new AtomicInteger();
        KeycloakTransactionManager tm = (KeycloakTransactionManager) Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {KeycloakTransactionManager.class}, (p, m, a) -> {
                    if (m.getName().equals("setRollbackOnly")) {
                        rollbacks.incrementAndGet();
                    }
                    return null;
                });
        // No realm in the context: no fine-grained admin permissions to switch off around the writes.
        org.keycloak.models.KeycloakContext context = (org.keycloak.models.KeycloakContext) Proxy.newProxyInstance(
                getClass().getClassLoader(), new Class<?>[] {org.keycloak.models.KeycloakContext.class},
                (p, m, a) -> null);
        KeycloakSession session = (KeycloakSession) Proxy.newProxyInstance(getClass().getClassLoader(),
                new Class<?>[] {KeycloakSession.class},
                (p, m, a) -> m.getName().equals("getTransactionManager") ? tm
                        : m.getName().equals("getContext") ? context : null);
        TwostepAdminResource resource = new TwostepAdminResource(session, null, null, null, () -> NOW);
        IllegalStateException boom = new IllegalStateException("index write failed");
        List<String> written = new java.util.ArrayList<>();
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> resource.inOneTransaction(() -> {
            written.add("record");
            throw boom;
        }));
        assertSame(boom, thrown);
        assertEquals(List.of("record"), written);
        assertEquals(1, rollbacks.get());
        assertEquals("done", resource.inOneTransaction(() -> "done"));
        assertEquals(1, rollbacks.get());
    }
}
