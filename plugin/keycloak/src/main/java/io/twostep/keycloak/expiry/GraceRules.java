package io.twostep.keycloak.expiry;

import io.twostep.keycloak.TwostepDecision;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeParseException;

/**
 * The pure part of ending grace sessions (docs/formats.md, "The grace index"): entries are filed
 * by the day the user was created, because a user's grace ends at
 * {@code max(created, enforce_since) + grace_days} and only {@code created} never changes: a policy
 * change (shorter grace, a new start) needs no re-filing. A bucket can hold a user whose grace is
 * over once {@code enforce_since + grace_days} and {@code day start + grace_days} are both reached.
 */
public final class GraceRules {

    private static final long DAY_MS = 24L * 3600 * 1000;

    private GraceRules() {
    }

    /** The bucket of a user created at {@code createdMs} (null: the epoch, as the decision counts it). */
    public static String bucketName(Long createdMs) {
        long t = createdMs == null ? 0L : createdMs;
        return LocalDate.ofInstant(Instant.ofEpochMilli(t), ZoneOffset.UTC).toString();
    }

    /** Whether a bucket ({@code YYYY-MM-DD}) may hold a user whose grace is over at {@code nowMs}. */
    public static boolean bucketMayBeDue(String name, TwostepDecision.Policy policy, long nowMs) {
        long dayStart;
        try {
            dayStart = LocalDate.parse(name).atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli();
        } catch (DateTimeParseException | NullPointerException e) {
            return false; // not a bucket: left alone
        }
        long grace = policy.graceDays() * DAY_MS;
        long since = policy.enforceSinceMillis() == null ? 0L : policy.enforceSinceMillis();
        return dayStart + grace <= nowMs && since + grace <= nowMs;
    }

    /** What a grace entry's user gets at this run, by the sign-in decision as it would be now. */
    public enum Action { END_SESSIONS, DROP, KEEP }

    public static Action action(TwostepDecision.Outcome outcome) {
        switch (outcome) {
            case ENROLL:
                return Action.END_SESSIONS; // grace over, still nothing set up: what grace let in ends
            case GRACE:
            case BYPASS:
                return Action.KEEP; // still let in with the password alone: looked at again later
            default:
                return Action.DROP; // a second factor now (REQUIRED), or out of scope: nothing to end
        }
    }
}
