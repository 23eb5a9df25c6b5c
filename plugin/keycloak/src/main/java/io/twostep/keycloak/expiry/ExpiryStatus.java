package io.twostep.keycloak.expiry;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.twostep.keycloak.TwostepDecision;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The task's heartbeat per realm: the attribute {@code twostep.expiry_task} of the index root group
 * {@code twostep-bypass} (docs/formats.md), which {@code twostep status}, {@code doctor} and sync read.
 * A group attribute, not a realm attribute: writing the realm would invalidate its cache on every
 * node at every write. Written after a run that ended something or found an error, else at most
 * once a minute; what was ended in between is added up, so no end is lost from the count.
 */
final class ExpiryStatus {

    static final String ATTRIBUTE = "twostep.expiry_task";
    static final long QUIET_WRITE_MS = 60_000;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Per realm id: ends and errors since the last write, and when that write was. */
    private final Map<String, long[]> pending = new ConcurrentHashMap<>();

    /** Adds one run's figures; true when this run should write the heartbeat. */
    boolean add(String realmId, long nowMs, int ended, int graceEnded, int errors) {
        long[] p = pending.computeIfAbsent(realmId, k -> new long[] {0, 0, 0, Long.MIN_VALUE / 2});
        synchronized (p) {
            p[0] += ended;
            p[1] += graceEnded;
            p[2] += errors;
            return ended > 0 || graceEnded > 0 || errors > 0 || nowMs - p[3] >= QUIET_WRITE_MS;
        }
    }

    /** The heartbeat's JSON for this write; resets the counts. */
    String take(String realmId, long nowMs, long durationMs, long intervalS) {
        long[] p = pending.computeIfAbsent(realmId, k -> new long[] {0, 0, 0, Long.MIN_VALUE / 2});
        Map<String, Object> out = new LinkedHashMap<>();
        synchronized (p) {
            out.put("v", 1);
            out.put("at", TwostepDecision.formatTime(nowMs));
            out.put("duration_ms", durationMs);
            out.put("interval_s", intervalS);
            out.put("ended", p[0]);
            out.put("grace_ended", p[1]);
            out.put("errors", p[2]);
            p[0] = 0;
            p[1] = 0;
            p[2] = 0;
            p[3] = nowMs;
        }
        try {
            return JSON.writeValueAsString(out);
        } catch (JsonProcessingException e) {
            return "{}";
        }
    }
}
