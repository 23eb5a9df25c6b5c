package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.twostep.keycloak.HelpRequestLimits.Limits;
import io.twostep.keycloak.HelpRequestRules.Verdict;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** Per-user and per-address limits and expiry of help requests (docs/formats.md, "Help requests"). */
class HelpRequestLimitsTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-01T20:00:00Z");
    private static final long MIN = 60_000L;
    private static final long HOUR = 60 * MIN;
    private static final Limits LIMITS = new Limits(3, 5, 7);

    private static List<Long> ago(long... minutes) {
        List<Long> out = new ArrayList<>();
        for (long m : minutes) {
            out.add(NOW - m * MIN);
        }
        return out;
    }

    private record Case(String name, List<Long> realm, int realmMax, List<Long> user, List<Long> address,
            Limits limits, Verdict expect) {
    }

    @TestFactory
    Stream<DynamicTest> decisionTable() {
        List<Case> cases = List.of(
                new Case("nothing filed", List.of(), 20, List.of(), List.of(), LIMITS, Verdict.ACCEPT),
                new Case("user: two today", List.of(), 20, ago(10, 600), List.of(), LIMITS, Verdict.ACCEPT),
                new Case("user: three today", List.of(), 20, ago(10, 600, 1400), List.of(), LIMITS,
                        Verdict.USER_LIMITED),
                new Case("user: the third is a day and a minute old", List.of(), 20, ago(10, 600, 1441), List.of(),
                        LIMITS, Verdict.ACCEPT),
                new Case("user: exactly 24 h is outside", List.of(), 20, ago(10, 600, 1440), List.of(), LIMITS,
                        Verdict.ACCEPT),
                new Case("user: a time in the future counts", List.of(), 20, Arrays.asList(NOW + HOUR, NOW, NOW),
                        List.of(), LIMITS, Verdict.USER_LIMITED),
                new Case("user: limit 0 is off", List.of(), 20, ago(1, 2, 3, 4), List.of(),
                        new Limits(0, 5, 7), Verdict.ACCEPT),
                new Case("address: four in the hour", List.of(), 20, List.of(), ago(1, 2, 3, 59), LIMITS,
                        Verdict.ACCEPT),
                new Case("address: five in the hour", List.of(), 20, List.of(), ago(1, 2, 3, 4, 59), LIMITS,
                        Verdict.ADDRESS_LIMITED),
                new Case("address: older than the hour do not count", List.of(), 20, List.of(),
                        ago(1, 2, 3, 4, 60, 61), LIMITS, Verdict.ACCEPT),
                new Case("address: limit 0 is off", List.of(), 20, List.of(), ago(1, 2, 3, 4, 5, 6),
                        new Limits(3, 0, 7), Verdict.ACCEPT),
                new Case("user before address", List.of(), 20, ago(1, 2, 3), ago(1, 2, 3, 4, 5), LIMITS,
                        Verdict.USER_LIMITED),
                new Case("address before realm", ago(1, 2), 2, List.of(), ago(1, 2, 3, 4, 5), LIMITS,
                        Verdict.ADDRESS_LIMITED),
                new Case("realm still counts", ago(1, 2), 2, ago(1), ago(1), LIMITS, Verdict.RATE_LIMITED),
                new Case("another address, realm below its limit", ago(1, 2, 3, 4, 5), 20, List.of(), List.of(),
                        LIMITS, Verdict.ACCEPT),
                new Case("unreadable times do not count", List.of(), 20, Arrays.asList(null, null, NOW),
                        Arrays.asList(null, null, null, null, NOW), LIMITS, Verdict.ACCEPT));
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name(), () -> assertEquals(c.expect(),
                HelpRequestRules.decide(NOW, false, c.realm(), c.realmMax(), c.user(), c.address(), c.limits()))));
    }

    @Test
    void anOpenRequestWinsOverEveryLimit() {
        assertEquals(Verdict.ALREADY_OPEN,
                HelpRequestRules.decide(NOW, true, ago(1, 2), 2, ago(1, 2, 3), ago(1, 2, 3, 4, 5), LIMITS));
    }

    @Test
    void onlyAcceptedFilingsAreKeptAndTheListStaysBounded() {
        // A refused filing writes nothing (the authenticator records only ACCEPT); a kept list holds
        // only the times inside the window plus the new one, the newest `limit` of them.
        assertEquals(List.of(NOW), HelpRequestLimits.afterFiling(List.of(), NOW, HOUR, 5));
        assertEquals(List.of(NOW - MIN, NOW), HelpRequestLimits.afterFiling(ago(1, 61), NOW, HOUR, 5));
        List<Long> many = HelpRequestLimits.afterFiling(ago(1, 2, 3, 4, 5, 6, 7, 8), NOW, HOUR, 3);
        assertEquals(List.of(NOW - 2 * MIN, NOW - MIN, NOW), many);
        assertEquals(List.of(NOW), HelpRequestLimits.afterFiling(ago(1, 2), NOW, HOUR, 0));
        assertEquals(many, HelpRequestLimits.parseTimes(HelpRequestLimits.formatTimes(many)));
        assertEquals(List.of(5L, 7L), HelpRequestLimits.parseTimes("5,x,-3,,7, 8"));
        assertEquals(List.of(), HelpRequestLimits.parseTimes(null));
    }

    @Test
    void limitsAreReadFromThePolicyLenientlyPerKey() {
        assertEquals(HelpRequestLimits.DEFAULTS, HelpRequestLimits.fromPolicy(null));
        assertEquals(HelpRequestLimits.DEFAULTS, HelpRequestLimits.fromPolicy("not json"));
        assertEquals(HelpRequestLimits.DEFAULTS, HelpRequestLimits.fromPolicy("[1,2]"));
        assertEquals(HelpRequestLimits.DEFAULTS, HelpRequestLimits.fromPolicy("{\"enforcement\":{}}"));
        assertEquals(new Limits(1, 0, 30), HelpRequestLimits.fromPolicy(
                "{\"help_max_per_user_day\":1,\"help_max_per_address_hour\":0,\"help_expiry_days\":30}"));
        assertEquals(new Limits(3, 5, 7), HelpRequestLimits.fromPolicy(
                "{\"help_max_per_user_day\":-1,\"help_max_per_address_hour\":\"9\",\"help_expiry_days\":0}"));
        assertEquals(new Limits(3, 5, 7), HelpRequestLimits.fromPolicy(
                "{\"help_max_per_user_day\":1.5,\"help_max_per_address_hour\":100001,\"help_expiry_days\":366}"));
    }

    @Test
    void aRequestExpiresAfterItsDaysToTheMillisecond() {
        long day = HelpRequestLimits.DAY_MS;
        assertFalse(HelpRequestLimits.expired(NOW, NOW - 7 * day + 1, 7));
        assertTrue(HelpRequestLimits.expired(NOW, NOW - 7 * day, 7));
        assertTrue(HelpRequestLimits.expired(NOW, NOW - 8 * day, 7));
        assertFalse(HelpRequestLimits.expired(NOW, NOW - 8 * day, 30));
        assertFalse(HelpRequestLimits.expired(NOW, NOW + day, 1), "a time in the future is not expired");
        assertFalse(HelpRequestLimits.expired(NOW, Long.MIN_VALUE, 1), "unreadable: left for the admins");
    }

    @Test
    void expiryOfARequestAsStored() {
        assertFalse(HelpRequestLimits.expiredAt(NOW, "2026-11-24T20:00:01Z", 7), "a second short of 7 days");
        assertTrue(HelpRequestLimits.expiredAt(NOW, "2026-11-24T20:00:00Z", 7), "7 days to the second");
        assertFalse(HelpRequestLimits.expiredAt(NOW, "2026-11-24T20:00:00Z", 8), "the realm's own expiry");
        assertTrue(HelpRequestLimits.expiredAt(NOW, "2026-11-30T20:00:00Z", 1));
        assertFalse(HelpRequestLimits.expiredAt(NOW, "2026-12-08T20:00:00Z", 1), "the future: not expired");
        assertFalse(HelpRequestLimits.expiredAt(NOW, "yesterday", 1), "unreadable: left for the admins");
        assertFalse(HelpRequestLimits.expiredAt(NOW, null, 1), "missing: left for the admins");
    }
}
