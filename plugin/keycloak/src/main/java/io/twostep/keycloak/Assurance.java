package io.twostep.keycloak;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a sign-in was, for the tokens (docs/provider.md, "Assurance in tokens"): pure, no Keycloak
 * types. The condition writes the bypass notes on the user session; the mapper
 * ({@link TwostepAssuranceMapper}) reads them with the completed executions; the condition sets
 * Keycloak's level of authentication to {@link #LOA_SECOND_FACTOR} only after a real second factor.
 */
public final class Assurance {

    /** User-session note: the bypass's end (epoch seconds) of a sign-in let in by a bypass. */
    public static final String NOTE_BYPASS_UNTIL = "twostep.bypass_until";
    /**
     * User-session note: which kind of bypass let the sign-in in: {@code password} (the password
     * alone; written by the condition) or any other kind an authenticator of the bypass writes over it
     * (for example {@code pass}). Every kind is "no second factor" for the tokens.
     */
    public static final String NOTE_BYPASS_KIND = "twostep.bypass_kind";
    public static final String KIND_PASSWORD = "password";
    /** Keycloak's level of authentication: the password (what Keycloak reports without LoA config). */
    public static final int LOA_PASSWORD = 1;
    /** The level a login reaches only through a real second factor in the twostep subflow. */
    public static final int LOA_SECOND_FACTOR = 2;
    /** The claim names the mapper writes. */
    public static final String CLAIM_BYPASS = "twostep_bypass";
    public static final String CLAIM_BYPASS_KIND = "twostep_bypass_kind";
    public static final String CLAIM_AMR = "amr";

    /** Authenticators (provider ids) that are a second factor, with their RFC 8176 method. */
    static final Map<String, String> SECOND_FACTORS = Map.of(
            "auth-otp-form", "otp",
            "direct-grant-validate-otp", "otp",
            "auth-recovery-authn-code-form", "otp",
            "webauthn-authenticator", "hwk",
            "webauthn-authenticator-passwordless", "hwk");
    /** Authenticators that check the password. */
    static final Set<String> PASSWORDS = Set.of(
            "auth-username-password-form", "auth-password-form", "direct-grant-validate-password");
    private static final Set<String> STRONG = Set.of("otp", "hwk", "mfa");

    private Assurance() {
    }

    /**
     * The {@code amr} values (RFC 8176) of a sign-in from the provider ids of its completed
     * authenticators: {@code pwd}, {@code otp}, {@code hwk}, and {@code mfa} when a password and a
     * second factor were both given. {@code bypassed}: a bypass let the sign-in in, so nothing but
     * {@code pwd} is claimed whatever else completed (fail closed).
     */
    public static List<String> amr(Collection<String> completedAuthenticators, boolean bypassed) {
        List<String> out = new ArrayList<>();
        boolean pwd = false;
        for (String id : completedAuthenticators) {
            if (id != null && PASSWORDS.contains(id)) {
                pwd = true;
            }
        }
        if (pwd) {
            out.add("pwd");
        }
        for (String id : completedAuthenticators) {
            String method = id == null ? null : SECOND_FACTORS.get(id);
            if (method != null && !out.contains(method)) {
                out.add(method);
            }
        }
        if (out.size() >= 2 && pwd) {
            out.add("mfa");
        }
        if (bypassed) {
            out.removeIf(STRONG::contains);
        }
        return out;
    }

    /**
     * Whether the second-factor subflow runs: for REQUIRED, and for every other browser outcome when
     * the client asked for the second-factor level ({@code acr_values} / {@code claims}): the second
     * factor is then asked, and a user without one ends on Keycloak's error page, never with a token
     * that claims less than was asked silently turned into one that seems to satisfy it.
     */
    public static boolean runSecondFactor(boolean decidedRequired, int requestedLoa) {
        return decidedRequired || requestedLoa >= LOA_SECOND_FACTOR;
    }

    /** Whether a completed authenticator is a second factor (the level is raised only then). */
    public static boolean isSecondFactor(String authenticatorId) {
        return authenticatorId != null && SECOND_FACTORS.containsKey(authenticatorId);
    }

    /** The bypass end as epoch seconds from the record's {@code until}; null when unreadable. */
    public static Long untilSeconds(Map<String, String> record) {
        Long ms = record == null ? null : TwostepDecision.parseTime(record.get("until"));
        return ms == null ? null : ms / 1000L;
    }
}
