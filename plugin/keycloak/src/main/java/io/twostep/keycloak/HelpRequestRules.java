package io.twostep.keycloak;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.FormatStyle;
import java.util.Collection;
import java.util.Locale;
import java.util.Map;

/**
 * The pure rules of "I lost my phone: ask an administrator" (docs/formats.md, "Help requests"):
 * whether a new request is taken, how the user's message is cleaned, how the rate limit is read
 * from the authenticator config, and how the time of an open request is shown. No Keycloak types,
 * the clock is passed in, so the JUnit table covers every case.
 */
public final class HelpRequestRules {

    /** What happens to a new request. */
    public enum Verdict { ACCEPT, ALREADY_OPEN, USER_LIMITED, ADDRESS_LIMITED, RATE_LIMITED }

    public static final String CONFIG_MAX_PER_HOUR = "twostep.help.max_per_hour";
    public static final int DEFAULT_MAX_PER_HOUR = 20;
    public static final int MAX_MESSAGE = 500;
    static final long WINDOW_MS = 3600_000L;

    private HelpRequestRules() {
    }

    /**
     * One open request per user first (a user who asked already is told so, whatever the limit),
     * then the realm-wide limit: refused while the open requests asked in the last hour are at or
     * above {@code maxPerHour} ({@code 0} = no limit). A time in the future counts as recent: a
     * clock step back must not open the gate.
     */
    public static Verdict decide(long nowMillis, boolean hasOpen, Collection<Long> askedAtOfOpenRequests,
            int maxPerHour) {
        if (hasOpen) {
            return Verdict.ALREADY_OPEN;
        }
        if (maxPerHour <= 0) {
            return Verdict.ACCEPT;
        }
        long recent = askedAtOfOpenRequests.stream().filter(t -> t != null && t > nowMillis - WINDOW_MS).count();
        return recent >= maxPerHour ? Verdict.RATE_LIMITED : Verdict.ACCEPT;
    }

    /**
     * The whole decision: one open (not expired) request per user first, then the user's own limit
     * (filings in the last day), then the source address's (filings in the last hour), then the
     * realm-wide one. The per-user and per-address limits come first so that an address or a user
     * at its limit is refused without touching the realm's budget: once one address is at its limit,
     * other users from other addresses can still file.
     */
    public static Verdict decide(long nowMillis, boolean hasOpen, Collection<Long> askedAtOfOpenRequests,
            int maxPerHour, Collection<Long> userFilings, Collection<Long> addressFilings,
            HelpRequestLimits.Limits limits) {
        if (hasOpen) {
            return Verdict.ALREADY_OPEN;
        }
        if (HelpRequestLimits.reached(userFilings, nowMillis, HelpRequestLimits.USER_WINDOW_MS,
                limits.perUserPerDay())) {
            return Verdict.USER_LIMITED;
        }
        if (HelpRequestLimits.reached(addressFilings, nowMillis, HelpRequestLimits.ADDRESS_WINDOW_MS,
                limits.perAddressPerHour())) {
            return Verdict.ADDRESS_LIMITED;
        }
        return decide(nowMillis, false, askedAtOfOpenRequests, maxPerHour);
    }

    /** The config value as formats.md reads it: a decimal integer >= 0, anything else the default. */
    public static int maxPerHour(Map<String, String> config) {
        String raw = config == null ? null : config.get(CONFIG_MAX_PER_HOUR);
        if (raw == null || !raw.matches("[0-9]{1,9}")) {
            return DEFAULT_MAX_PER_HOUR;
        }
        return Integer.parseInt(raw);
    }

    /**
     * The message as stored: line breaks and tabs become spaces (a one-line field for the admin
     * pages and e-mails), every other control character (Unicode Cc) is removed, then trimmed.
     * Null input is the empty message.
     */
    public static String clean(String raw) {
        if (raw == null) {
            return "";
        }
        StringBuilder out = new StringBuilder(raw.length());
        raw.codePoints().forEach(cp -> {
            if (cp == '\n' || cp == '\r' || cp == '\t') {
                out.append(' ');
            } else if (Character.getType(cp) != Character.CONTROL) {
                out.appendCodePoint(cp);
            }
        });
        return out.toString().strip();
    }

    /** Whether a cleaned message fits: at most 500 characters (code points, as Python counts). */
    public static boolean fits(String cleaned) {
        return cleaned.codePointCount(0, cleaned.length()) <= MAX_MESSAGE;
    }

    /** A time as the user reads it: their locale's medium date and time, in UTC, said so. */
    public static String localTime(long millis, Locale locale) {
        ZonedDateTime at = Instant.ofEpochMilli(millis).atZone(ZoneOffset.UTC);
        return DateTimeFormatter.ofLocalizedDateTime(FormatStyle.MEDIUM)
                .withLocale(locale == null ? Locale.ENGLISH : locale).format(at) + " UTC";
    }

    /**
     * How long ago, as a message key of the theme and its arguments: under a minute "now", under an
     * hour minutes, under two days hours and minutes, else days. A time in the future reads "now".
     */
    public record Ago(String key, String[] args) {
    }

    public static Ago ago(long nowMillis, long thenMillis) {
        long minutes = Math.max(0, (nowMillis - thenMillis) / 60_000L);
        if (minutes < 1) {
            return new Ago("twostepHelpAgoNow", new String[0]);
        }
        if (minutes < 60) {
            return new Ago("twostepHelpAgoMinutes", new String[] {Long.toString(minutes)});
        }
        if (minutes < 48 * 60) {
            return new Ago("twostepHelpAgoHours", new String[] {Long.toString(minutes / 60), Long.toString(minutes % 60)});
        }
        return new Ago("twostepHelpAgoDays", new String[] {Long.toString(minutes / (24 * 60))});
    }
}
