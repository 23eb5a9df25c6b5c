package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.twostep.keycloak.HelpRequestRules.Verdict;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** The help-request rules as a table of cases (docs/formats.md, "Help requests"). */
class HelpRequestRulesTest {

    private static final long NOW = TwostepDecision.parseTime("2026-12-01T20:00:00Z");
    private static final long MIN = 60_000L;

    private record Case(String name, boolean hasOpen, List<Long> askedAt, int max, Verdict expect) {
    }

    private static List<Long> ago(long... minutes) {
        List<Long> out = new ArrayList<>();
        for (long m : minutes) {
            out.add(NOW - m * MIN);
        }
        return out;
    }

    @TestFactory
    Stream<DynamicTest> decisionTable() {
        List<Case> cases = List.of(
                new Case("first request, nobody asked", false, List.of(), 20, Verdict.ACCEPT),
                new Case("open request wins over everything", true, List.of(), 20, Verdict.ALREADY_OPEN),
                new Case("open request even when the realm is at its limit", true, ago(1, 2), 2, Verdict.ALREADY_OPEN),
                new Case("one below the limit", false, ago(1), 2, Verdict.ACCEPT),
                new Case("at the limit", false, ago(1, 59), 2, Verdict.RATE_LIMITED),
                new Case("above the limit", false, ago(1, 2, 3), 2, Verdict.RATE_LIMITED),
                new Case("old requests do not count", false, ago(60, 61, 600), 2, Verdict.ACCEPT),
                new Case("exactly one hour old is outside the window", false, ago(60, 1), 2, Verdict.ACCEPT),
                new Case("59 min 59 s is inside", false, Arrays.asList(NOW - 3599_000L, NOW - MIN), 2,
                        Verdict.RATE_LIMITED),
                new Case("a time in the future counts as recent", false, Arrays.asList(NOW + 10 * MIN, NOW), 2,
                        Verdict.RATE_LIMITED),
                new Case("limit 0 is off", false, ago(1, 2, 3, 4, 5), 0, Verdict.ACCEPT),
                new Case("limit 1", false, ago(5), 1, Verdict.RATE_LIMITED),
                new Case("unreadable times do not count", false, Arrays.asList(null, null, NOW), 2, Verdict.ACCEPT));
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.name(),
                () -> assertEquals(c.expect(), HelpRequestRules.decide(NOW, c.hasOpen(), c.askedAt(), c.max()))));
    }

    @Test
    void everyVerdictIsReachable() {
        assertEquals(Verdict.ACCEPT, HelpRequestRules.decide(NOW, false, List.of(), 1));
        assertEquals(Verdict.ALREADY_OPEN, HelpRequestRules.decide(NOW, true, List.of(), 1));
        assertEquals(Verdict.RATE_LIMITED, HelpRequestRules.decide(NOW, false, List.of(NOW), 1));
    }

    @Test
    void rateLimitConfigIsADecimalIntegerOrTheDefault() {
        assertEquals(20, HelpRequestRules.maxPerHour(null));
        assertEquals(20, HelpRequestRules.maxPerHour(Map.of()));
        assertEquals(2, HelpRequestRules.maxPerHour(Map.of("twostep.help.max_per_hour", "2")));
        assertEquals(0, HelpRequestRules.maxPerHour(Map.of("twostep.help.max_per_hour", "0")));
        for (String bad : List.of("", "-1", "1.5", " 3", "3 ", "abc", "0x10", "+4", "99999999999")) {
            assertEquals(20, HelpRequestRules.maxPerHour(Map.of("twostep.help.max_per_hour", bad)), bad);
        }
    }

    @Test
    void messagesAreTrimmedAndControlCharactersGo() {
        assertEquals("", HelpRequestRules.clean(null));
        assertEquals("", HelpRequestRules.clean("   \n\t "));
        assertEquals("lost my phone", HelpRequestRules.clean("  lost my phone \n"));
        assertEquals("line one  line two", HelpRequestRules.clean("line one\r\nline two"));
        assertEquals("bell gone", HelpRequestRules.clean("bell\u0007 gone"));
        assertEquals("nul and esc", HelpRequestRules.clean("nul\u0000 and\u001b esc\u007f\u0085"));
        assertEquals("Телефон потерян, ruf mich an: Grüße", HelpRequestRules.clean("Телефон потерян, ruf mich an: Grüße"));
        assertEquals("emoji \uD83D\uDCF1 stays", HelpRequestRules.clean("emoji \uD83D\uDCF1 stays"));
    }

    @Test
    void fiveHundredCharactersFitFiveHundredAndOneDoNot() {
        assertTrue(HelpRequestRules.fits("a".repeat(500)));
        assertFalse(HelpRequestRules.fits("a".repeat(501)));
        assertTrue(HelpRequestRules.fits(""));
        // Characters, not UTF-16 units: 500 phones (each two units) fit.
        assertTrue(HelpRequestRules.fits("\uD83D\uDCF1".repeat(500)));
        assertFalse(HelpRequestRules.fits("\uD83D\uDCF1".repeat(501)));
        // Trimming comes first: padding does not count.
        assertTrue(HelpRequestRules.fits(HelpRequestRules.clean("  " + "b".repeat(500) + "\n\n")));
    }

    @Test
    void askedAtIsWrittenInTheStoredTimeFormat() {
        assertEquals("2026-12-01T20:00:00Z", TwostepDecision.formatTime(NOW + 999));
        assertEquals(NOW, TwostepDecision.parseTime(TwostepDecision.formatTime(NOW)));
    }

    @Test
    void timesAreShownInTheUsersLocaleInUtc() {
        String en = HelpRequestRules.localTime(NOW, Locale.ENGLISH);
        String de = HelpRequestRules.localTime(NOW, Locale.GERMAN);
        String ru = HelpRequestRules.localTime(NOW, Locale.forLanguageTag("ru"));
        assertTrue(en.contains("2026") && en.endsWith(" UTC") && en.contains("Dec"), en);
        assertTrue(de.contains("01.12.2026") && de.contains("20:00"), de);
        assertTrue(ru.contains("2026") && ru.contains("20:00") && ru.contains("дек"), ru);
        assertTrue(HelpRequestRules.localTime(NOW, null).endsWith(" UTC"));
    }

    @Test
    void elapsedTimeReadsInSteps() {
        assertEquals("twostepHelpAgoNow", HelpRequestRules.ago(NOW, NOW - 59_000).key());
        assertEquals("twostepHelpAgoNow", HelpRequestRules.ago(NOW, NOW + 5 * MIN).key());
        HelpRequestRules.Ago m = HelpRequestRules.ago(NOW, NOW - 5 * MIN);
        assertEquals("twostepHelpAgoMinutes", m.key());
        assertEquals(List.of("5"), List.of(m.args()));
        HelpRequestRules.Ago h = HelpRequestRules.ago(NOW, NOW - (3 * 60 + 7) * MIN);
        assertEquals("twostepHelpAgoHours", h.key());
        assertEquals(List.of("3", "7"), List.of(h.args()));
        HelpRequestRules.Ago d = HelpRequestRules.ago(NOW, NOW - 3 * 24 * 60 * MIN);
        assertEquals("twostepHelpAgoDays", d.key());
        assertEquals(List.of("3"), List.of(d.args()));
    }
}
