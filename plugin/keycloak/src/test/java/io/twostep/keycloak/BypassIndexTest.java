package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The names of the bypass index (docs/formats.md), as the admin extension writes and the expiry task reads them. */
class BypassIndexTest {

    @ParameterizedTest(name = "{0} -> bucket {1}")
    @CsvSource(delimiter = '|', value = {
        "2026-12-01T20:30:00Z | 2026-12-01T20",
        "2026-12-01T20:00:00Z | 2026-12-01T20",  // the hour's first second
        "2026-12-01T20:59:59Z | 2026-12-01T20",  // its last
        "2026-12-31T23:59:59Z | 2026-12-31T23",
        "1970-01-01T00:00:00Z | 1970-01-01T00",  // an unreadable until files at 0
    })
    void bucketName(String until, String bucket) {
        long t = TwostepDecision.parseTime(until);
        assertEquals(bucket, BypassIndex.bucketName(t));
        assertEquals(bucket, BypassIndex.bucketName(t + 999));
        long[] span = BypassIndex.bucketSpan(bucket);
        assertEquals(true, span[0] <= t && t < span[1], "the bucket's span holds the time");
    }

    @ParameterizedTest(name = "span of {0}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        "2026-12-01T20 | 2026-12-01T20:00:00Z | 2026-12-01T21:00:00Z",
        "2026-12-31T23 | 2026-12-31T23:00:00Z | 2027-01-01T00:00:00Z",
        "2026-12-1T20  | null                 | null",  // not a bucket name
        "2026-13-01T20 | null                 | null",
        "ending        | null                 | null",
        "x             | null                 | null",
    })
    void bucketSpan(String name, String start, String end) {
        long[] span = BypassIndex.bucketSpan(name);
        if (start == null) {
            assertNull(span);
        } else {
            assertArrayEquals(new long[] {TwostepDecision.parseTime(start), TwostepDecision.parseTime(end)}, span);
        }
    }

    /** entry name | user id | credential id | well named. */
    @ParameterizedTest(name = "entry {0}")
    @CsvSource(delimiter = '|', value = {
        "u-1.c-2      | u-1 | c-2    | true",
        "u-1.c-2.more | u-1 | c-2.more | true",  // the first dot splits
        "nodot        | ''  | ''     | false",
        ".c1          | ''  | ''     | false",
        "u1.          | u1  | ''     | false",
    })
    void entryNames(String name, String user, String credential, boolean wellNamed) {
        BypassIndex.Entry e = new BypassIndex.Entry("g", name, null, false, null);
        assertEquals(List.of(user, credential, wellNamed), List.of(e.userId(), e.credentialId(), e.wellNamed()));
        if (wellNamed && !credential.contains(".")) {
            assertEquals(name, BypassIndex.entryName(user, credential), "written as read");
        }
    }

    @org.junit.jupiter.api.Test
    void constants() {
        assertEquals(List.of("twostep-bypass", "ending"), List.of(BypassIndex.ROOT, BypassIndex.CLAIM));
    }
}
