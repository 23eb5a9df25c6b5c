package io.twostep.keycloak.expiry;

import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.BypassIndex.Entry;
import io.twostep.keycloak.TwostepDecision;
import java.util.ArrayList;
import java.util.List;

/**
 * The pure part of the expiry task (no Keycloak types, no clock): which index entries are due, which
 * are left-overs of an earlier end, which buckets can go, and which of a user's sessions end with a
 * bypass. docs/formats.md ("The bypass index") is the format; docs/provider.md ("The expiry task")
 * says why.
 */
public final class ExpiryRules {

    /**
     * Sessions whose start lies this far around the bypass window count as opened during it (the
     * record's times have whole seconds; the session's start is Keycloak's own). As sync's
     * {@code bypass_end.SESSION_SKEW_MS}: ending one session too many is the safe side.
     */
    public static final long SESSION_SKEW_MS = 5_000;

    private ExpiryRules() {
    }

    /** What one run does with one bucket's entries. */
    public record Plan(List<Entry> due, List<Entry> tidy) {
        public Plan {
            due = List.copyOf(due);
            tidy = List.copyOf(tidy);
        }
    }

    /**
     * Due: not claimed, and its {@code until} is reached or cannot be read (a damaged entry ends like
     * any other, as sync ends it). Tidy: claimed by an earlier run (its claim's {@code at} is before
     * this run began, or unreadable): the entry goes now, a run later than its claim, so that a sync
     * pass that read the entry before the claim meets the claim (409) and never a missing entry it
     * could claim again. A name that is not {@code <user id>.<credential id>} is left alone.
     */
    public static Plan plan(List<Entry> entries, long nowMs, long runStartMs) {
        List<Entry> due = new ArrayList<>();
        List<Entry> tidy = new ArrayList<>();
        for (Entry e : entries) {
            if (!e.wellNamed()) {
                continue;
            }
            if (e.claimed()) {
                Long at = TwostepDecision.parseTime(e.claimAtRaw());
                if (at == null || at < runStartMs - 1000) {
                    tidy.add(e);
                }
                continue;
            }
            Long until = TwostepDecision.parseTime(e.untilRaw());
            if (until == null || until <= nowMs) {
                due.add(e);
            }
        }
        return new Plan(due, tidy);
    }

    /** Whether the entries of this bucket can be due: its hour has begun. */
    public static boolean bucketBegun(String name, long nowMs) {
        long[] span = BypassIndex.bucketSpan(name);
        return span != null && span[0] <= nowMs;
    }

    /** Whether an empty bucket can be removed: its hour is over. */
    public static boolean bucketOver(String name, long nowMs) {
        long[] span = BypassIndex.bucketSpan(name);
        return span != null && span[1] <= nowMs;
    }

    /**
     * Whether a session that started at {@code startedSeconds} (Keycloak's session start) ends with
     * this bypass: it began during the window, from {@code granted_at} to the bypass's end (the
     * record's {@code until}, or now if that is earlier), widened by {@link #SESSION_SKEW_MS} on both
     * sides. Sessions from before the window were opened with the second factor and are kept, as
     * {@code twostep bypass revoke} keeps them; sessions after the end were asked for it. A record
     * whose times cannot be read gives no trustworthy window: every session ends.
     */
    public static boolean endsWithBypass(long startedSeconds, String grantedRaw, String untilRaw, long nowMs) {
        Long granted = TwostepDecision.parseTime(grantedRaw);
        Long until = TwostepDecision.parseTime(untilRaw);
        if (granted == null || until == null) {
            return true;
        }
        long started = startedSeconds * 1000L;
        long lo = granted - SESSION_SKEW_MS;
        long hi = Math.min(until, nowMs) + SESSION_SKEW_MS;
        return started >= lo && started <= hi;
    }
}
