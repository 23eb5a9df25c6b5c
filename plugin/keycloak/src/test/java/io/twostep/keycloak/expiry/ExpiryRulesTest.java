package io.twostep.keycloak.expiry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.TwostepDecision;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ExpiryRulesTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-01T20:30:00Z");
    private static final long RUN = NOW;

    /** name | until | claimed | claim at | expected: due, tidy or keep. */
    @ParameterizedTest(name = "{0} until={1} claimed={2} at={3} -> {4}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        "u1.c1 | 2026-12-01T20:29:59Z | false | null                 | due",   // over a second ago
        "u1.c1 | 2026-12-01T20:30:00Z | false | null                 | due",   // ends now: due (now >= until)
        "u1.c1 | 2026-12-01T20:30:01Z | false | null                 | keep",  // one second left
        "u1.c1 | 2026-12-01T23:00:00Z | false | null                 | keep",
        "u1.c1 | garbage              | false | null                 | due",   // damaged end: ended like sync ends it
        "u1.c1 | null                 | false | null                 | due",
        "u1.c1 | 2026-12-01T20:00:00Z | true  | 2026-12-01T20:29:00Z | tidy",  // claimed by an earlier run
        "u1.c1 | 2026-12-01T20:00:00Z | true  | 2026-12-01T20:30:00Z | keep",  // claimed in this run's second
        "u1.c1 | 2026-12-01T20:00:00Z | true  | 2026-12-01T20:29:59Z | tidy",  // the second before this run began (20:30:00.5)
        "u1.c1 | 2026-12-01T20:00:00Z | true  | null                 | tidy",  // claim without a time
        "u1.c1 | 2026-12-01T20:00:00Z | true  | not-a-time           | tidy",
        "nodot | 2026-12-01T20:00:00Z | false | null                 | keep",  // not an entry name: left alone
        ".c1   | 2026-12-01T20:00:00Z | false | null                 | keep",
        "u1.   | 2026-12-01T20:00:00Z | false | null                 | keep",
    })
    void plan(String name, String until, boolean claimed, String claimAt, String expected) {
        BypassIndex.Entry e = new BypassIndex.Entry("g", name, until, claimed, claimAt);
        ExpiryRules.Plan plan = ExpiryRules.plan(List.of(e), NOW, RUN + 500);
        String got = plan.due().contains(e) ? "due" : plan.tidy().contains(e) ? "tidy" : "keep";
        assertEquals(expected, got);
    }

    @ParameterizedTest(name = "started {0} (granted {1}, until {2}) -> {3}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        // window 20:00:00 .. 20:25:00, now 20:30:00, skew 5 s
        "2026-12-01T19:59:00Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | false", // before the window: kept
        "2026-12-01T19:59:54Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | false",
        "2026-12-01T19:59:55Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | true",  // within the skew
        "2026-12-01T20:10:00Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | true",
        "2026-12-01T20:25:05Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | true",
        "2026-12-01T20:25:06Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | false", // after the end: second factor asked
        "2026-12-01T20:29:00Z | 2026-12-01T20:00:00Z | 2026-12-01T20:25:00Z | false",
        "2026-12-01T20:29:00Z | 2026-12-01T20:00:00Z | 2026-12-01T21:00:00Z | true",  // ended early: window up to now
        "2026-12-01T20:30:06Z | 2026-12-01T20:00:00Z | 2026-12-01T21:00:00Z | false",
        "2026-12-01T19:00:00Z | garbage              | 2026-12-01T20:25:00Z | true",  // no trustworthy window: all
        "2026-12-01T19:00:00Z | 2026-12-01T20:00:00Z | null                 | true",
    })
    void sessions(String started, String granted, String until, boolean ends) {
        long startedS = TwostepDecision.parseTime(started) / 1000;
        assertEquals(ends, ExpiryRules.endsWithBypass(startedS, granted, until, NOW));
    }

    @ParameterizedTest(name = "bucket {0}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        "2026-12-01T20 | true  | false",  // running hour: entries may be due, bucket not over
        "2026-12-01T19 | true  | true",
        "2026-12-01T21 | false | false",
        "2026-12-1T20  | false | false",  // not a bucket name: left alone
        "ending        | false | false",
        "2026-13-01T20 | false | false",
    })
    void buckets(String name, boolean begun, boolean over) {
        assertEquals(begun, ExpiryRules.bucketBegun(name, NOW));
        assertEquals(over, ExpiryRules.bucketOver(name, NOW));
    }

    @org.junit.jupiter.api.Test
    void serves() {
        ExpiryTask task = new ExpiryTask(null, () -> NOW, 30, java.util.regex.Pattern.compile("x-.*"),
                ExpiryMetrics.NONE);
        String provider = "{\"record_store\":\"credential\"}";
        List<Boolean> got = List.of(
                task.serves("x-a", provider),
                task.serves("y-a", provider),                                   // name outside the option
                task.serves("x-a", "{\"record_store\":\"attributes\"}"),         // fallback mode: sync
                task.serves("x-a", "{\"record_store\":\"credential\",\"expiry_task\":\"off\"}"),
                task.serves("x-a", "{\"record_store\":\"credential\",\"expiry_task\":\"on\"}"),
                task.serves("x-a", "not json"),
                task.serves("x-a", null)).stream().collect(Collectors.toList());
        assertEquals(List.of(true, false, false, false, true, false, false), got);
    }
}
