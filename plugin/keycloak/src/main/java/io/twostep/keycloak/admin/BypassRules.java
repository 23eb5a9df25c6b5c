package io.twostep.keycloak.admin;

import io.twostep.keycloak.TwostepDecision;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a bypass grant, extension or revocation may do, decided from plain values: no Keycloak types,
 * no clock of its own, never writes. The admin endpoint reads the inputs under the user's row lock,
 * asks here, and writes only the plan it gets back (docs/formats.md, "The bypass record"; the same
 * rules as Python's bypass.grant / bypass.revoke).
 */
public final class BypassRules {

    public static final long MIN_BYPASS_S = 300;
    /** Sessions this far around a bypass window count as opened during it (clocks differ a little). */
    public static final long SESSION_SKEW_MS = 5_000;

    public enum Action { GRANT, EXTEND, REVOKE }

    /** Which sessions the change ends: none, every one (and the user's not-before), or those that began in [from, to]. */
    public enum Sessions { NONE, ALL, WINDOW }

    /** What the admin asked for. {@code seconds} or {@code until} (exactly one) for grant and extend. */
    public record Request(Action action, Long seconds, String until, String reason, String by,
                          boolean resetDevice, Boolean endSessions, boolean breakGlass) {
    }

    /**
     * Who acts on whom: {@code self} when the admin is the user; {@code missingRoles} the
     * realm-management roles the user holds and the admin does not.
     */
    public record Parties(boolean self, List<String> missingRoles) {
        public Parties {
            missingRoles = List.copyOf(missingRoles);
        }
    }

    /** The change to write: the new record (null: remove it), which sessions end, whether OTP devices go. */
    public record Plan(String event, Map<String, String> record, Sessions sessions, long fromMs, long toMs,
                       boolean removeOtp, String previousUntil) {
    }

    /** Refused: an HTTP status (400, 403, 404, 409) and one line saying why; or the plan. */
    public record Decision(int status, String message, Plan plan) {
        static Decision refuse(int status, String message) {
            return new Decision(status, message, null);
        }

        public boolean allowed() {
            return plan != null;
        }
    }

    private BypassRules() {
    }

    /**
     * The rules every endpoint applies before Keycloak's own permission is enough: nobody acts on their
     * own account, and a user holding realm-management roles only by an admin holding them too. Null: allowed.
     */
    public static Decision refuseParties(Parties parties, String username) {
        if (parties.self()) {
            return Decision.refuse(403, "you cannot change the two-step settings of your own account (" + username
                    + "); another admin must do it");
        }
        if (!parties.missingRoles().isEmpty()) {
            return Decision.refuse(403, username + " holds realm-management role(s) you do not hold ("
                    + String.join(", ", parties.missingRoles()) + "): only an admin with those roles may do this");
        }
        return null;
    }

    /**
     * @param nowMillis  Keycloak's clock
     * @param policy     the realm policy (the fail-closed default when damaged)
     * @param username   for the messages
     * @param record     the user's bypass record (credentialData as strings), or null when none
     * @param records    how many {@code twostep-bypass} credentials the user has (2+ count as none)
     */
    public static Decision decide(long nowMillis, TwostepDecision.Policy policy, Parties parties, Request req,
                                  String username, Map<String, String> record, int records) {
        Decision refused = refuseParties(parties, username);
        if (refused != null) {
            return refused;
        }
        long now = nowMillis - Math.floorMod(nowMillis, 1000L); // records hold whole seconds
        boolean hasRecord = record != null && records == 1;
        if (req.action() == Action.REVOKE) {
            if (!hasRecord || !"true".equals(record.get("marker"))) {
                return Decision.refuse(404, username + " has no bypass to revoke");
            }
            boolean end = req.endSessions() == null || req.endSessions();
            Long granted = TwostepDecision.parseTime(record.get("granted_at"));
            Sessions sessions = !end ? Sessions.NONE : granted == null ? Sessions.ALL : Sessions.WINDOW;
            return new Decision(200, null, new Plan("bypass.revoke", null, sessions,
                    granted == null ? 0 : granted - SESSION_SKEW_MS, now + SESSION_SKEW_MS, false, record.get("until")));
        }
        String reason = req.reason() == null ? "" : req.reason().strip();
        if (reason.isEmpty()) {
            return Decision.refuse(400, "a reason is required");
        }
        String by = req.by() == null ? "" : req.by().strip();
        if (by.isEmpty()) {
            return Decision.refuse(400, "who grants it (by) is required");
        }
        if (req.resetDevice() && Boolean.FALSE.equals(req.endSessions())) {
            return Decision.refuse(400, "resetting the device always ends the user's sessions (the lost phone may "
                    + "hold one)");
        }
        if ((req.seconds() == null) == (req.until() == null)) {
            return Decision.refuse(400, "give exactly one of seconds or until");
        }
        long end;
        if (req.seconds() != null) {
            if (req.seconds() <= 0) {
                return Decision.refuse(400, "the bypass duration must be longer than zero");
            }
            end = now + req.seconds() * 1000;
        } else {
            Long until = TwostepDecision.parseTime(req.until());
            if (until == null) {
                return Decision.refuse(400, "cannot read until " + req.until() + ": use YYYY-MM-DDTHH:MM:SSZ");
            }
            end = until;
        }
        if (end <= now) {
            return Decision.refuse(400, "until " + TwostepDecision.formatTime(end) + " is not in the future");
        }
        long max = Math.min(policy.bypassMaxS(), TwostepDecision.HARD_BYPASS_MAX_S);
        if (end - now < MIN_BYPASS_S * 1000) {
            return Decision.refuse(400, "a bypass must last at least 5 minutes");
        }
        if (end - now > policy.bypassMaxS() * 1000) {
            return Decision.refuse(400, "a bypass may last at most " + policy.bypassMaxS()
                    + " s in realm policy; there is no 'forever'");
        }
        boolean active = hasRecord && TwostepDecision.bypassValid(nowMillis, policy, record);
        boolean extending = req.action() == Action.EXTEND;
        if (!extending && active) {
            return Decision.refuse(409, username + " is already bypassed until " + record.get("until")
                    + "; extend it instead");
        }
        if (extending && !active) {
            return Decision.refuse(400, username + " has no active bypass to extend; grant one");
        }
        long granted = extending ? TwostepDecision.parseTime(record.get("granted_at")) : now;
        if (end - granted > max * 1000) {
            return Decision.refuse(400, "the bypass of " + username + " began " + TwostepDecision.formatTime(granted)
                    + "; until " + TwostepDecision.formatTime(end) + " it would last longer than the realm maximum (" + max
                    + " s): revoke it and grant a new one");
        }
        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("marker", "true");
        fields.put("until", TwostepDecision.formatTime(end));
        fields.put("granted_at", TwostepDecision.formatTime(granted));
        fields.put("by", by);
        fields.put("reason", reason);
        fields.put("extended", String.valueOf(extending ? extended(record) + 1 : 0));
        fields.put("reset_device", req.resetDevice() || (extending && "true".equals(record.get("reset_device")))
                ? "true" : "false");
        boolean endAll = req.endSessions() == null ? req.resetDevice() : req.endSessions();
        Sessions sessions = endAll ? Sessions.ALL : Sessions.NONE;
        long from = 0;
        if (!endAll && !extending && record != null && record.get("marker") != null) {
            // An earlier bypass not cleaned up yet: its sessions were opened without the second factor.
            Long old = TwostepDecision.parseTime(record.get("granted_at"));
            sessions = old == null ? Sessions.ALL : Sessions.WINDOW;
            from = old == null ? 0 : old - SESSION_SKEW_MS;
        }
        return new Decision(200, null, new Plan(extending ? "bypass.extend" : "bypass.grant", fields, sessions,
                from, now + SESSION_SKEW_MS, req.resetDevice(), extending ? record.get("until") : null));
    }

    private static int extended(Map<String, String> record) {
        try {
            return Integer.parseInt(record.getOrDefault("extended", "0"));
        } catch (NumberFormatException e) {
            return 0;
        }
    }
}
