package io.twostep.keycloak.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BypassKindsTest {

    private static final String BASE = "{\"backup_codes\":\"required\",\"bypass_max_s\":604800,\"decided_by\":\"provider\","
            + "\"enforce_since\":\"2026-01-01T00:00:00Z\",\"enforcement\":{\"grace_days\":0,\"groups\":[],\"mode\":\"all\"},"
            + "\"record_store\":\"credential\"";

    private static BypassKinds.Allowed parse(String extra) {
        return BypassKinds.parse(BASE + extra + "}");
    }

    @Test
    void theRealmPolicySaysWhichKinds() {
        assertEquals(new BypassKinds.Allowed(List.of("pass", "password"), "pass"), parse(""),
                "a record without the keys: both, the pass by default");
        assertEquals(BypassKinds.DEFAULT, parse(""));
        assertEquals(new BypassKinds.Allowed(List.of("pass", "password"), "pass"),
                parse(",\"bypass_kinds\":[\"password\",\"pass\"]"), "kinds without a default: the pass if allowed");
        assertEquals(new BypassKinds.Allowed(List.of("password"), "password"),
                parse(",\"bypass_kinds\":[\"password\"]"), "kinds without a default: else the first");
        assertEquals(new BypassKinds.Allowed(List.of("pass", "password"), "password"),
                parse(",\"bypass_default\":\"password\""), "setup --bypass-default password");
        assertEquals(new BypassKinds.Allowed(List.of("pass", "password"), "pass"),
                parse(",\"bypass_default\":\"sms\""), "a default that is not a kind: the pass");
        assertEquals(new BypassKinds.Allowed(List.of("pass"), "pass"), parse(",\"bypass_kinds\":[\"pass\"]"));
        assertEquals(new BypassKinds.Allowed(List.of("pass", "password"), "pass"),
                parse(",\"bypass_kinds\":[\"password\",\"pass\"],\"bypass_default\":\"pass\""));
        assertEquals(new BypassKinds.Allowed(List.of("password"), "password"),
                parse(",\"bypass_kinds\":[\"password\"],\"bypass_default\":\"pass\""), "a default not allowed: the first");
    }

    @Test
    void aDamagedOrMissingPolicyAllowsThePassOnly() {
        assertEquals(BypassKinds.FAIL_CLOSED, BypassKinds.parse(null));
        assertEquals(BypassKinds.FAIL_CLOSED, BypassKinds.parse("{broken"));
        assertEquals(BypassKinds.FAIL_CLOSED, parse(",\"bypass_kinds\":[]"));
        assertEquals(BypassKinds.FAIL_CLOSED, parse(",\"bypass_kinds\":\"pass,password\""));
        assertEquals(BypassKinds.FAIL_CLOSED, parse(",\"bypass_kinds\":[\"pass\",\"sms\"]"));
        assertEquals(BypassKinds.FAIL_CLOSED, parse(",\"bypass_kinds\":[1]"));
    }

    @Test
    void aGrantGetsTheKindAskedForOrTheDefault() {
        BypassKinds.Allowed both = BypassKinds.DEFAULT;
        BypassKinds.Choice byDefault = BypassKinds.choose(both, null, null, false, null);
        assertEquals("pass", byDefault.kind(), "no kind asked: the realm's default, the pass");
        assertEquals("once", byDefault.passUse());
        assertEquals("password", BypassKinds.choose(new BypassKinds.Allowed(List.of("pass", "password"), "password"),
                null, null, false, null).kind(), "a realm whose default is the password");
        BypassKinds.Choice once = BypassKinds.choose(both, null, "once", false, null);
        assertEquals("pass", once.kind());
        assertEquals("once", once.passUse());
        assertEquals("once", BypassKinds.choose(both, "pass", null, false, null).passUse(), "once unless said");
        assertEquals(Map.of("kind", "pass", "pass_use", "multi", "pass_used", "0"),
                BypassKinds.fields(BypassKinds.choose(both, "pass", "multi", false, null), false, null));
        assertEquals(Map.of(), BypassKinds.fields(BypassKinds.choose(both, "password", null, false, null), false, null),
                "a password bypass is written as before");
    }

    @Test
    void aRealmThatForbidsPasswordOnlyRefusesIt() {
        BypassKinds.Allowed passOnly = new BypassKinds.Allowed(List.of("pass"), "pass");
        String why = BypassKinds.choose(passOnly, "password", null, false, null).refusal();
        assertTrue(why.startsWith("the realm policy forbids password-only bypasses"), why);
        assertEquals("pass", BypassKinds.choose(passOnly, null, null, false, null).kind(), "its default is the pass");
        assertTrue(BypassKinds.choose(new BypassKinds.Allowed(List.of("password"), "password"), "pass", "once", false,
                null).refusal().contains("does not allow access-pass"));
        assertTrue(BypassKinds.choose(passOnly, "pass", "twice", false, null).refusal().contains("once or multi"));
        assertTrue(BypassKinds.choose(passOnly, "sms", null, false, null).refusal().contains("pass or password"));
    }

    @Test
    void anExtensionKeepsTheKindAndTheUses() {
        Map<String, String> current = Map.of("kind", "pass", "pass_use", "multi", "pass_used", "2");
        BypassKinds.Choice kept = BypassKinds.choose(BypassKinds.DEFAULT, null, null, true, current);
        assertNull(kept.refusal());
        assertEquals(Map.of("kind", "pass", "pass_use", "multi", "pass_used", "2"),
                BypassKinds.fields(kept, true, current));
        assertTrue(BypassKinds.choose(BypassKinds.DEFAULT, "password", null, true, current).refusal()
                .contains("revoke it and grant a new one"));
        assertTrue(BypassKinds.choose(new BypassKinds.Allowed(List.of("pass"), "pass"), null, null, true, Map.of())
                .refusal().contains("forbids password-only"), "an old password bypass is not extended against the policy");
    }
}
