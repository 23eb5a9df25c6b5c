package io.twostep.keycloak.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.twostep.keycloak.TwostepDecision;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Which kinds of bypass admins may grant (the realm policy's {@code bypass_kinds} and
 * {@code bypass_default}, docs/formats.md) and what a grant, extension or help answer asks for.
 * Pure: plain values in, a refusal or the record fields out.
 */
public final class BypassKinds {

    public static final String PASS = TwostepDecision.KIND_PASS;
    public static final String PASSWORD = "password";
    /** Damaged or missing policy: the kind that keeps the sign-in two-step. */
    public static final Allowed FAIL_CLOSED = new Allowed(List.of(PASS), PASS);
    /** An intact policy without the keys: both, and the kind that keeps the sign-in two-step by default. */
    public static final Allowed DEFAULT = new Allowed(List.of(PASS, PASSWORD), PASS);
    private static final ObjectMapper JSON = new ObjectMapper();

    public record Allowed(List<String> kinds, String byDefault) {
        public Allowed {
            kinds = List.copyOf(kinds);
        }
    }

    /** What to write: the record's extra fields ({@code kind}, {@code pass_use}, {@code pass_used}). */
    public record Choice(String kind, String passUse, String refusal) {
        public boolean pass() {
            return PASS.equals(kind);
        }
    }

    private BypassKinds() {
    }

    /**
     * The policy's kinds: {@code bypass_kinds} absent, both; {@code bypass_default} absent or not allowed, the
     * pass if allowed, else the first. A record that is not intact, or kinds that cannot be read: pass only.
     */
    public static Allowed parse(String policyJson) {
        if (!TwostepDecision.parsePolicy(policyJson).intact()) {
            return FAIL_CLOSED;
        }
        try {
            JsonNode root = JSON.readTree(policyJson);
            JsonNode kinds = root.get("bypass_kinds");
            JsonNode dflt = root.get("bypass_default");
            List<String> out = new ArrayList<>();
            if (kinds == null) {
                out.addAll(DEFAULT.kinds());
            } else {
                if (!kinds.isArray() || kinds.isEmpty()) {
                    return FAIL_CLOSED;
                }
                for (Iterator<JsonNode> it = kinds.elements(); it.hasNext();) {
                    JsonNode k = it.next();
                    if (!k.isTextual() || !(PASS.equals(k.asText()) || PASSWORD.equals(k.asText()))) {
                        return FAIL_CLOSED;
                    }
                    if (!out.contains(k.asText())) {
                        out.add(k.asText());
                    }
                }
            }
            List<String> ordered = out.contains(PASS) ? new ArrayList<>(List.of(PASS)) : new ArrayList<>();
            if (out.contains(PASSWORD)) {
                ordered.add(PASSWORD);
            }
            // No default, or one not allowed: the pass if allowed, else the first.
            String d = dflt != null && dflt.isTextual() && ordered.contains(dflt.asText()) ? dflt.asText()
                    : ordered.get(0);
            return new Allowed(ordered, d);
        } catch (Exception e) {
            return FAIL_CLOSED;
        }
    }

    /**
     * @param kind      asked for ({@code pass}, {@code password}), null: the realm's default
     * @param passUse   {@code once} / {@code multi}, null: once
     * @param extending an extension keeps the kind of the record it extends ({@code current})
     */
    public static Choice choose(Allowed allowed, String kind, String passUse, boolean extending,
                                Map<String, String> current) {
        if (kind != null && !PASS.equals(kind) && !PASSWORD.equals(kind)) {
            return refuse("kind must be pass or password");
        }
        if (passUse != null && !"once".equals(passUse) && !"multi".equals(passUse)) {
            return refuse("pass_use must be once or multi");
        }
        String k;
        String use;
        if (extending) {
            String had = current == null ? PASSWORD : current.getOrDefault("kind", PASSWORD);
            if ((kind != null && !kind.equals(had)) || (passUse != null && !passUse.equals(current.get("pass_use")))) {
                return refuse("an extension keeps the kind of the bypass (" + had
                        + "); revoke it and grant a new one to change it");
            }
            k = had;
            use = current == null ? null : current.get("pass_use");
        } else {
            k = kind == null ? (passUse != null ? PASS : allowed.byDefault()) : kind;
            use = PASS.equals(k) ? (passUse == null ? "once" : passUse) : null;
            if (PASSWORD.equals(k) && passUse != null) {
                return refuse("pass_use goes with kind pass");
            }
        }
        if (!allowed.kinds().contains(k)) {
            return refuse(PASSWORD.equals(k)
                    ? "the realm policy forbids password-only bypasses: grant an access pass instead (--pass once|multi)"
                    : "the realm policy does not allow access-pass bypasses (bypass kinds: "
                            + String.join(",", allowed.kinds()) + ")");
        }
        return new Choice(k, use, null);
    }

    private static Choice refuse(String why) {
        return new Choice(null, null, why);
    }

    /** The record's fields for the choice (a password bypass written as before: no extra field). */
    public static Map<String, String> fields(Choice choice, boolean extending, Map<String, String> current) {
        if (!choice.pass()) {
            return Map.of();
        }
        String used = extending && current != null ? current.getOrDefault("pass_used", "0") : "0";
        return Map.of("kind", PASS, "pass_use", choice.passUse(), "pass_used", used);
    }
}
