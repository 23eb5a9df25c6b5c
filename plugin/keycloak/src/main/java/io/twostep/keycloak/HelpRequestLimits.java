package io.twostep.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;

/**
 * The per-user and per-address limits of help requests and their expiry (docs/formats.md, "Help
 * requests"), read from the realm's policy record. Pure: no Keycloak types, the clock is passed in.
 *
 * <p>The filings a limit counts are kept as a short list of times (milliseconds, comma-separated)
 * per user and per source address in Keycloak's cluster-wide single-use-object store
 * ({@link HelpRequestCounts}); this class decides what that list holds: only the times inside the
 * window, at most as many as the limit (more can never change a decision), so one entry stays small.
 */
public final class HelpRequestLimits {

    public static final String KEY_PER_USER = "help_max_per_user_day";
    public static final String KEY_PER_ADDRESS = "help_max_per_address_hour";
    public static final String KEY_EXPIRY_DAYS = "help_expiry_days";
    public static final int DEFAULT_PER_USER = 3;
    public static final int DEFAULT_PER_ADDRESS = 5;
    public static final int DEFAULT_EXPIRY_DAYS = 7;
    public static final int MAX_LIMIT = 100_000;
    public static final int MAX_EXPIRY_DAYS = 365;
    public static final long DAY_MS = 86_400_000L;
    public static final long USER_WINDOW_MS = DAY_MS;
    public static final long ADDRESS_WINDOW_MS = 3_600_000L;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** 0 as a limit: no limit. expiryDays: 1..365. */
    public record Limits(int perUserPerDay, int perAddressPerHour, int expiryDays) {
    }

    public static final Limits DEFAULTS = new Limits(DEFAULT_PER_USER, DEFAULT_PER_ADDRESS, DEFAULT_EXPIRY_DAYS);

    private HelpRequestLimits() {
    }

    /**
     * The limits of the policy record; each key missing or not an integer in range is its default,
     * and an unreadable record gives the defaults (the limits on: a damaged record never opens the gate).
     */
    public static Limits fromPolicy(String policyJson) {
        JsonNode root;
        try {
            root = policyJson == null ? null : JSON.readTree(policyJson);
        } catch (Exception e) {
            root = null;
        }
        if (root == null || !root.isObject()) {
            return DEFAULTS;
        }
        return new Limits(intIn(root.get(KEY_PER_USER), 0, MAX_LIMIT, DEFAULT_PER_USER),
                intIn(root.get(KEY_PER_ADDRESS), 0, MAX_LIMIT, DEFAULT_PER_ADDRESS),
                intIn(root.get(KEY_EXPIRY_DAYS), 1, MAX_EXPIRY_DAYS, DEFAULT_EXPIRY_DAYS));
    }

    private static int intIn(JsonNode node, int min, int max, int fallback) {
        if (node == null || !node.isIntegralNumber() || !node.canConvertToInt()) {
            return fallback;
        }
        int v = node.asInt();
        return v < min || v > max ? fallback : v;
    }

    /**
     * Whether a request asked at {@code askedAt} has expired: {@code expiryDays} days after it, to the
     * millisecond. An unreadable time ({@code Long.MIN_VALUE}, as the authenticator reads it) never
     * expires here: the admins see it as damaged and close it themselves.
     */
    public static boolean expired(long nowMillis, long askedAt, int expiryDays) {
        if (askedAt == Long.MIN_VALUE) {
            return false;
        }
        return nowMillis - askedAt >= expiryDays * DAY_MS;
    }

    /**
     * The same for {@code asked_at} as stored (an ISO time, docs/formats.md): an unreadable one never
     * expires. What the expiry task and sync ({@code help_requests.expired}) both decide.
     */
    public static boolean expiredAt(long nowMillis, String askedAtRaw, int expiryDays) {
        Long at = TwostepDecision.parseTime(askedAtRaw);
        return at != null && expired(nowMillis, at, expiryDays);
    }

    /** How many of the times are inside the window ending now; a time in the future counts. */
    public static int recent(Collection<Long> times, long nowMillis, long windowMs) {
        return (int) times.stream().filter(Objects::nonNull).filter(t -> t > nowMillis - windowMs).count();
    }

    /** Whether one more filing is refused: {@code limit} or more inside the window (0: no limit). */
    public static boolean reached(Collection<Long> times, long nowMillis, long windowMs, int limit) {
        return limit > 0 && recent(times, nowMillis, windowMs) >= limit;
    }

    /**
     * The list to store after a filing at {@code nowMillis}: the times still inside the window plus
     * this one, oldest first, at most {@code limit} of them (the newest).
     */
    public static List<Long> afterFiling(Collection<Long> times, long nowMillis, long windowMs, int limit) {
        List<Long> kept = new ArrayList<>(times.stream().filter(Objects::nonNull)
                .filter(t -> t > nowMillis - windowMs).sorted().toList());
        kept.add(nowMillis);
        int keep = Math.max(1, limit);
        return kept.size() > keep ? List.copyOf(kept.subList(kept.size() - keep, kept.size())) : List.copyOf(kept);
    }

    /** Times as stored ("ms,ms,..."); anything unreadable is left out. */
    public static List<Long> parseTimes(String text) {
        List<Long> out = new ArrayList<>();
        if (text == null || text.isEmpty()) {
            return out;
        }
        for (String part : text.split(",", 1000)) {
            if (part.matches("[0-9]{1,15}")) {
                out.add(Long.parseLong(part));
            }
        }
        return out;
    }

    public static String formatTimes(List<Long> times) {
        return String.join(",", times.stream().map(String::valueOf).toList());
    }
}
