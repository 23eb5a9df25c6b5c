package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/** The shared cases of docs/formats/decision-vectors.json (Python runs the same file). */
class DecisionTest {

    private static JsonNode vectors() throws Exception {
        String path = System.getProperty("twostep.vectors", "../../docs/formats/decision-vectors.json");
        return new ObjectMapper().readTree(new File(path));
    }

    @Test
    void theFileHoldsEnoughDistinctCases() throws Exception {
        JsonNode all = vectors();
        assertTrue(all.isArray() && all.size() >= 30, "at least 30 cases, got " + all.size());
        Set<String> names = new HashSet<>();
        Set<String> outcomes = new HashSet<>();
        for (JsonNode v : all) {
            assertTrue(names.add(v.get("name").asText()), "duplicate name " + v.get("name"));
            outcomes.add(v.get("expect").asText());
        }
        // Every outcome is exercised, so a decision that always answers one thing cannot pass.
        for (TwostepDecision.Outcome o : TwostepDecision.Outcome.values()) {
            assertTrue(outcomes.contains(o.name()), "no case expects " + o);
        }
    }

    @TestFactory
    Stream<DynamicTest> everyVector() throws Exception {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode v : vectors()) {
            tests.add(DynamicTest.dynamicTest(v.get("name").asText(), () -> check(v)));
        }
        return tests.stream();
    }

    private static void check(JsonNode v) {
        Long now = TwostepDecision.parseTime(v.get("now").asText());
        // created null: Keycloak cannot keep the user's creation time (LDAP with import off)
        Long created = v.get("created").isNull() ? null : TwostepDecision.parseTime(v.get("created").asText());
        assertNotNull(now, "now must be well-formed in the vector itself");
        if (!v.get("created").isNull()) {
            assertNotNull(created, "created must be well-formed in the vector itself");
        }
        JsonNode d = v.get("door");
        TwostepDecision.Door door = d == null ? TwostepDecision.Door.BROWSER : new TwostepDecision.Door(
                d.hasNonNull("idp") ? d.get("idp").asText() : null,
                d.path("direct_grant").asBoolean(false), d.path("has_otp").asBoolean(false));
        JsonNode p = v.get("policy");
        TwostepDecision.Policy policy = p.isNull() ? null : TwostepDecision.parsePolicy(p.asText());
        Map<String, String> record = null;
        JsonNode r = v.get("record");
        if (!r.isNull()) {
            record = new HashMap<>();
            for (Map.Entry<String, JsonNode> e : r.properties()) {
                record.put(e.getKey(), e.getValue().asText());
            }
        }
        TwostepDecision.Result got = TwostepDecision.decide(now, policy, created, v.get("in_scope").asBoolean(),
                record, v.get("has_device").asBoolean(), v.get("has_codes").asBoolean(), door);
        List<String> actions = new ArrayList<>();
        v.get("actions").forEach(a -> actions.add(a.asText()));
        assertEquals(v.get("expect").asText(), got.outcome().name());
        assertEquals(actions, got.requiredActions());
    }

    @Test
    void timeFormatIsStrict() {
        assertEquals(0L, TwostepDecision.parseTime("1970-01-01T00:00:00Z"));
        assertEquals(253402300799000L, TwostepDecision.parseTime("9999-12-31T23:59:59Z"));
        assertEquals(951782400000L, TwostepDecision.parseTime("2000-02-29T00:00:00Z"));
        for (String bad : new String[] {null, "", "2026-02-30T00:00:00Z", "2100-02-29T00:00:00Z",
                "0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "2026-12-01T20:15:00z",
                "2026-12-01T20:15:00+00:00", "2026-12-01T20:15:00.5Z", "2026-12-01t20:15:00Z",
                "2026-12-01T20:15:00Z\n", " 2026-12-01T20:15:00Z", "2026-13-01T00:00:00Z",
                "2026-12-01T20:60:00Z", "\u0662026-12-01T20:15:00Z"}) {
            assertNull(TwostepDecision.parseTime(bad), "should be malformed: " + bad);
        }
    }

    @Test
    void policyParseFailsClosed() {
        assertFalse(TwostepDecision.parsePolicy(null).intact());
        assertFalse(TwostepDecision.parsePolicy("").intact());
        assertFalse(TwostepDecision.parsePolicy("{\"enforcement\":{\"mode\":\"all\"}}").intact());
        assertEquals(TwostepDecision.FAIL_CLOSED, TwostepDecision.parsePolicy("{\"enforcement\":1}"));
        TwostepDecision.Policy ok = TwostepDecision.parsePolicy(
                "{\"enforcement\":{\"mode\":\"groups\",\"groups\":[\"/staff\"],\"grace_days\":3},"
                        + "\"bypass_max_s\":99999999,\"backup_codes\":\"off\"}");
        assertTrue(ok.intact());
        assertEquals(TwostepDecision.HARD_BYPASS_MAX_S, ok.bypassMaxS());
        assertEquals(List.of("/staff"), ok.groups());
        assertEquals("off", ok.backupCodes());
    }

    @Test
    void groupScopeIncludesSubgroups() {
        TwostepDecision.Policy p = TwostepDecision.parsePolicy(
                "{\"enforcement\":{\"mode\":\"groups\",\"groups\":[\"staff\", \"/ops/oncall\"],\"grace_days\":0}}");
        assertTrue(TwostepDecision.inScope(p, List.of("/staff")));
        assertTrue(TwostepDecision.inScope(p, List.of("/other", "/staff/berlin/it")));
        assertTrue(TwostepDecision.inScope(p, List.of("/ops/oncall")));
        assertFalse(TwostepDecision.inScope(p, List.of("/ops")));
        assertFalse(TwostepDecision.inScope(p, List.of("/staffing")));
        assertFalse(TwostepDecision.inScope(p, List.of()));
        assertFalse(TwostepDecision.inScope(p, null));
        TwostepDecision.Policy none = TwostepDecision.parsePolicy("{\"enforcement\":{\"mode\":\"none\",\"grace_days\":0}}");
        assertFalse(TwostepDecision.inScope(none, List.of("/staff")));
        // A damaged policy puts everyone in scope.
        assertTrue(TwostepDecision.inScope(TwostepDecision.parsePolicy("{"), List.of()));
        assertTrue(TwostepDecision.inScope(null, List.of()));
        TwostepDecision.Policy root = TwostepDecision.parsePolicy(
                "{\"enforcement\":{\"mode\":\"groups\",\"groups\":[\"/\"],\"grace_days\":0}}");
        assertFalse(TwostepDecision.inScope(root, List.of("/staff")));
    }
}
