package io.twostep.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The sign-in decision of docs/formats.md as a pure function over plain inputs: no Keycloak types,
 * no clock, no I/O, so the same table-driven cases (docs/formats/decision-vectors.json) run here and
 * in the Python package. Nothing here throws: unreadable input always means "ask for more".
 */
public final class TwostepDecision {

    /**
     * BYPASS, GRACE, NOT_IN_SCOPE, TRUSTED_IDP: no second factor for this login. REQUIRED: the
     * second-factor subflow runs. ENROLL: enrollment is added to this login. REFUSED (a password grant
     * only): the user's second factor cannot be asked in a password grant; the login is refused.
     */
    public enum Outcome { BYPASS, REQUIRED, ENROLL, GRACE, NOT_IN_SCOPE, TRUSTED_IDP, REFUSED, PASS }

    /** The record's {@code kind} of a bypass that stays two-step: the access pass replaces the code. */
    public static final String KIND_PASS = "pass";

    /**
     * Where the login is happening, as far as the decision cares: the identity provider alias a
     * brokered login came through (null: none), whether it is a password grant (the token endpoint,
     * where no form can be shown), and whether the user has an {@code otp} credential (the only second
     * factor a password grant can check).
     */
    public record Door(String identityProvider, boolean directGrant, boolean hasOtp) {
        public static final Door BROWSER = new Door(null, false, false);
    }

    /** What the condition does: the outcome and the required actions to add to this login. */
    public record Result(Outcome outcome, List<String> requiredActions) {
        public Result {
            requiredActions = List.copyOf(requiredActions);
        }
    }

    public static final String CONFIGURE_TOTP = "CONFIGURE_TOTP";
    public static final String CONFIGURE_RECOVERY_AUTHN_CODES = "CONFIGURE_RECOVERY_AUTHN_CODES";

    public static final long HARD_BYPASS_MAX_S = 30L * 24 * 3600;
    public static final long FAIL_CLOSED_BYPASS_MAX_S = 3600;
    public static final long DEFAULT_BYPASS_MAX_S = 7L * 24 * 3600;
    private static final long DAY_MS = 24L * 3600 * 1000;

    private static final Set<String> MODES = Set.of("all", "groups", "none");
    private static final Set<String> BACKUP_CODES = Set.of("required", "offered", "off");
    private static final Set<String> RECORD_STORES = Set.of("credential", "attributes");
    private static final Set<String> DECIDED_BY = Set.of("provider", "sync");
    private static final DateTimeFormatter FORMAT =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'").withZone(ZoneOffset.UTC);
    private static final Pattern TIME = Pattern.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z");
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The realm policy as the decision needs it. {@code intact} is false for the fail-closed
     * default that stands in for a missing or unreadable record.
     */
    public record Policy(String mode, List<String> groups, int graceDays, Long enforceSinceMillis,
                         long bypassMaxS, String backupCodes, boolean intact, List<String> trustedIdps) {
        public Policy {
            groups = List.copyOf(groups);
            trustedIdps = List.copyOf(trustedIdps);
        }

        public Policy(String mode, List<String> groups, int graceDays, Long enforceSinceMillis, long bypassMaxS,
                      String backupCodes, boolean intact) {
            this(mode, groups, graceDays, enforceSinceMillis, bypassMaxS, backupCodes, intact, List.of());
        }
    }

    /** Everyone in scope, no grace, a 1-hour bypass maximum, backup codes required. */
    public static final Policy FAIL_CLOSED =
            new Policy("all", List.of(), 0, null, FAIL_CLOSED_BYPASS_MAX_S, "required", false);

    private TwostepDecision() {
    }

    /** A time in the one format ({@code YYYY-MM-DDTHH:MM:SSZ}, UTC, whole seconds: the millis are cut). */
    public static String formatTime(long millis) {
        return FORMAT.format(Instant.ofEpochMilli(millis));
    }

    /**
     * Milliseconds since the epoch for a time in the one format ({@code YYYY-MM-DDTHH:MM:SSZ}, UTC,
     * a date that exists, year 0001-9999), or null for anything else.
     */
    public static Long parseTime(String text) {
        if (text == null || !TIME.matcher(text).matches()) {
            return null;
        }
        try {
            int year = Integer.parseInt(text.substring(0, 4));
            if (year < 1) {
                return null; // Python's datetime has no year 0: both readers must agree
            }
            LocalDateTime t = LocalDateTime.of(year, Integer.parseInt(text.substring(5, 7)),
                    Integer.parseInt(text.substring(8, 10)), Integer.parseInt(text.substring(11, 13)),
                    Integer.parseInt(text.substring(14, 16)), Integer.parseInt(text.substring(17, 19)));
            return t.toInstant(ZoneOffset.UTC).toEpochMilli();
        } catch (DateTimeException | NumberFormatException e) {
            return null; // 2026-02-30, 25:00:00, 23:59:60
        }
    }

    /** The policy record, or {@link #FAIL_CLOSED} when it is missing, not JSON or has wrong types. */
    public static Policy parsePolicy(String json) {
        if (json == null || json.isEmpty()) {
            return FAIL_CLOSED;
        }
        try {
            JsonNode root = JSON.readTree(json);
            if (root == null || !root.isObject()) {
                return FAIL_CLOSED;
            }
            JsonNode enf = root.get("enforcement");
            if (enf == null || !enf.isObject()) {
                return FAIL_CLOSED;
            }
            JsonNode mode = enf.get("mode");
            if (mode == null || !mode.isTextual() || !MODES.contains(mode.asText())) {
                return FAIL_CLOSED;
            }
            JsonNode grace = enf.get("grace_days");
            if (grace == null || !grace.isIntegralNumber() || !grace.canConvertToInt()
                    || grace.asInt() < 0 || grace.asInt() > 365) {
                return FAIL_CLOSED;
            }
            List<String> groups = new ArrayList<>();
            JsonNode gs = enf.get("groups");
            if (gs != null) {
                if (!gs.isArray()) {
                    return FAIL_CLOSED;
                }
                for (Iterator<JsonNode> it = gs.elements(); it.hasNext();) {
                    JsonNode g = it.next();
                    if (!g.isTextual()) {
                        return FAIL_CLOSED;
                    }
                    groups.add(g.asText());
                }
            }
            Long since = null;
            JsonNode es = root.get("enforce_since");
            if (es != null) {
                if (!es.isTextual()) {
                    return FAIL_CLOSED;
                }
                if (!es.asText().isEmpty()) {
                    since = parseTime(es.asText());
                    if (since == null) {
                        return FAIL_CLOSED; // a start we cannot read could only ever widen the grace
                    }
                }
            }
            long max = DEFAULT_BYPASS_MAX_S;
            JsonNode bm = root.get("bypass_max_s");
            if (bm != null) {
                if (!bm.isIntegralNumber() || !bm.canConvertToLong() || bm.asLong() < 0) {
                    return FAIL_CLOSED;
                }
                max = Math.min(bm.asLong(), HARD_BYPASS_MAX_S);
            }
            String codes = choice(root.get("backup_codes"), BACKUP_CODES, "required");
            if (codes == null || choice(root.get("record_store"), RECORD_STORES, "attributes") == null
                    || choice(root.get("decided_by"), DECIDED_BY, "sync") == null) {
                return FAIL_CLOSED;
            }
            return new Policy(mode.asText(), groups, grace.asInt(), since, max, codes, true,
                    trustedIdps(root.get("trusted_idps")));
        } catch (Exception e) {
            return FAIL_CLOSED; // not JSON (or anything else unexpected): ask for more
        }
    }

    /**
     * The identity providers whose logins need no second factor here. Lenient: anything but a list of
     * non-blank strings trusts none (asks for more), and never makes the record unreadable.
     */
    private static List<String> trustedIdps(JsonNode node) {
        if (node == null || !node.isArray()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        for (Iterator<JsonNode> it = node.elements(); it.hasNext();) {
            JsonNode a = it.next();
            if (!a.isTextual() || a.asText().isBlank()) {
                return List.of();
            }
            out.add(a.asText());
        }
        return out;
    }

    /** The value when absent, the value when one of the allowed strings, otherwise null (damaged). */
    private static String choice(JsonNode node, Set<String> allowed, String absent) {
        if (node == null) {
            return absent;
        }
        if (!node.isTextual() || !allowed.contains(node.asText())) {
            return null;
        }
        return node.asText();
    }

    /**
     * Whether the policy puts a user with these group paths (e.g. {@code /staff/berlin}) in scope: a
     * member of a named group or of any of its subgroups is.
     */
    public static boolean inScope(Policy policy, Collection<String> groupPaths) {
        Policy p = policy != null ? policy : FAIL_CLOSED;
        if (!p.intact() || "all".equals(p.mode())) {
            return true;
        }
        if (!"groups".equals(p.mode()) || groupPaths == null) {
            return false;
        }
        for (String wanted : p.groups()) {
            String w = strip(wanted);
            if (w.isEmpty()) {
                continue; // "/" would otherwise put every member of any group in scope
            }
            for (String path : groupPaths) {
                String g = path == null ? "" : strip(path);
                if (g.equals(w) || g.startsWith(w + "/")) {
                    return true;
                }
            }
        }
        return false;
    }

    private static String strip(String path) {
        int a = 0;
        int b = path.length();
        while (a < b && path.charAt(a) == '/') {
            a++;
        }
        while (b > a && path.charAt(b - 1) == '/') {
            b--;
        }
        return path.substring(a, b);
    }

    /** The five rules of "A bypass counts only if" in docs/formats.md. */
    public static boolean bypassValid(long nowMillis, Policy policy, Map<String, String> record) {
        Policy p = policy != null ? policy : FAIL_CLOSED;
        if (record == null || !"true".equals(record.get("marker"))) {
            return false;
        }
        Long until = parseTime(record.get("until"));
        Long granted = parseTime(record.get("granted_at"));
        if (until == null || granted == null) {
            return false;
        }
        if (!(granted <= nowMillis && nowMillis < until)) {
            return false;
        }
        long maxS = Math.min(p.bypassMaxS(), HARD_BYPASS_MAX_S);
        if (until - granted > maxS * 1000) {
            return false;
        }
        return nonEmpty(record.get("by")) && nonEmpty(record.get("reason"));
    }

    private static boolean nonEmpty(String s) {
        return s != null && !s.isBlank(); // blank is no name and no reason either
    }

    /**
     * The decision at sign-in.
     *
     * @param nowMillis        Keycloak's clock
     * @param policy           the parsed policy; null means the fail-closed default
     * @param createdMillis    the user's creation time; null counts as the epoch: the grace starts at
     *                         enforce_since, or is long over when there is none
     * @param inScope          whether the policy puts this user in scope (ignored, i.e. true, when the
     *                         policy is the fail-closed default)
     * @param record           the bypass record's fields, or null when there is none
     * @param hasDevice        an {@code otp} or {@code webauthn} credential
     * @param hasCodes         a {@code recovery-authn-codes} credential
     */
    public static Result decide(long nowMillis, Policy policy, Long createdMillis, boolean inScope,
                                Map<String, String> record, boolean hasDevice, boolean hasCodes) {
        return decide(nowMillis, policy, createdMillis, inScope, record, hasDevice, hasCodes, Door.BROWSER);
    }

    /**
     * The decision at a door (docs/formats.md, "Doors"): a bypass first; then a login through an
     * identity provider the policy trusts; then the decision of the browser, which a password grant
     * narrows: one who must enroll or whose second factor is not an OTP device is refused, and backup
     * codes are not asked for (they are asked at the next browser sign-in).
     *
     * @param createdMillis null when Keycloak cannot keep the user's creation time (a federated user
     *                      not imported): the grace then starts at the policy's {@code enforce_since}
     */
    public static Result decide(long nowMillis, Policy policy, Long createdMillis, boolean inScope,
                                Map<String, String> record, boolean hasDevice, boolean hasCodes, Door door) {
        Policy p = policy != null ? policy : FAIL_CLOSED;
        Door d = door != null ? door : Door.BROWSER;
        if (bypassValid(nowMillis, p, record)) {
            String kind = record.getOrDefault("kind", "password");
            if ("password".equals(kind)) {
                return new Result(Outcome.BYPASS, List.of());
            }
            if (!d.directGrant() && AccessPass.live(record)) {
                // The second-factor subflow runs, where the access pass is accepted instead of a code.
                return new Result(Outcome.PASS, List.of());
            }
            // A pass used up, a password grant (which cannot ask for a pass) or an unknown kind: as if
            // there were no bypass.
        }
        if (p.intact() && d.identityProvider() != null && p.trustedIdps().contains(d.identityProvider())) {
            return new Result(Outcome.TRUSTED_IDP, List.of());
        }
        Result browser = browserDecision(nowMillis, p, createdMillis, inScope, hasDevice, hasCodes);
        if (!d.directGrant() || browser.outcome() != Outcome.REQUIRED) {
            return browser;
        }
        if (!d.hasOtp()) {
            return new Result(Outcome.REFUSED, List.of(CONFIGURE_TOTP));
        }
        List<String> actions = new ArrayList<>(browser.requiredActions());
        actions.remove(CONFIGURE_RECOVERY_AUTHN_CODES);
        return new Result(Outcome.REQUIRED, actions);
    }

    private static Result browserDecision(long nowMillis, Policy p, Long createdMillis, boolean inScope,
                                          boolean hasDevice, boolean hasCodes) {
        boolean scope = p.intact() ? inScope : true;
        long start = createdMillis != null ? createdMillis : 0L;
        if (p.enforceSinceMillis() != null) {
            start = Math.max(start, p.enforceSinceMillis());
        }
        boolean graceOver = nowMillis >= start + p.graceDays() * DAY_MS;
        if (hasDevice || hasCodes) {
            List<String> actions = new ArrayList<>();
            if (hasDevice && !hasCodes && "required".equals(p.backupCodes())) {
                actions.add(CONFIGURE_RECOVERY_AUTHN_CODES);
            }
            if (hasCodes && !hasDevice && scope && graceOver) {
                actions.add(CONFIGURE_TOTP);
            }
            return new Result(Outcome.REQUIRED, actions);
        }
        if (!scope) {
            return new Result(Outcome.NOT_IN_SCOPE, List.of());
        }
        if (!graceOver) {
            return new Result(Outcome.GRACE, List.of());
        }
        List<String> actions = new ArrayList<>();
        actions.add(CONFIGURE_TOTP);
        if (!"off".equals(p.backupCodes())) {
            actions.add(CONFIGURE_RECOVERY_AUTHN_CODES);
        }
        return new Result(Outcome.ENROLL, actions);
    }
}
