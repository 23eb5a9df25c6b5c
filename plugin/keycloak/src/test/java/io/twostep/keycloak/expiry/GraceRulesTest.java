package io.twostep.keycloak.expiry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.twostep.keycloak.TwostepDecision;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GraceRulesTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-10T12:00:00Z");

    private static TwostepDecision.Policy policy(int graceDays, String since) {
        return new TwostepDecision.Policy("all", List.of(), graceDays,
                since == null ? null : TwostepDecision.parseTime(since), 3600, "required", true);
    }

    /** bucket (creation day) | grace days | enforce_since | may hold a user whose grace is over. */
    @ParameterizedTest(name = "{0} grace {1} since {2} -> {3}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        "2026-12-03 | 7 | null                 | true",   // created 3 Dec 00:00 + 7 d = 10 Dec 00:00 <= now
        "2026-12-04 | 7 | null                 | false",  // earliest end 11 Dec: not opened
        "2026-12-10 | 0 | null                 | true",   // no grace: today's sign-ins are due
        "2026-12-10 | 0 | 2026-12-10T12:00:01Z | false",  // enforcement starts in a second
        "2020-01-01 | 7 | 2026-12-05T00:00:00Z | false",  // old users: grace from the start, 12 Dec
        "2020-01-01 | 7 | 2026-12-03T12:00:00Z | true",
        "1970-01-01 | 0 | null                 | true",   // no creation time counts as the epoch
        "garbage    | 0 | null                 | false",  // not a bucket: left alone
    })
    void buckets(String bucket, int grace, String since, boolean due) {
        assertEquals(due, GraceRules.bucketMayBeDue(bucket, policy(grace, since), NOW));
    }

    @Test
    void actions() {
        assertEquals(GraceRules.Action.END_SESSIONS, GraceRules.action(TwostepDecision.Outcome.ENROLL));
        assertEquals(GraceRules.Action.KEEP, GraceRules.action(TwostepDecision.Outcome.GRACE));
        assertEquals(GraceRules.Action.KEEP, GraceRules.action(TwostepDecision.Outcome.BYPASS));
        assertEquals(GraceRules.Action.DROP, GraceRules.action(TwostepDecision.Outcome.REQUIRED));
        assertEquals(GraceRules.Action.DROP, GraceRules.action(TwostepDecision.Outcome.NOT_IN_SCOPE));
        assertEquals("2026-12-10", GraceRules.bucketName(NOW));
        assertEquals("1970-01-01", GraceRules.bucketName(null));
    }
}
