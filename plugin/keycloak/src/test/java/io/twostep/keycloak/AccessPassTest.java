package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class AccessPassTest {

    private final SecureRandom random = new SecureRandom();

    @Test
    void aPassIsSixteenCrockfordCharactersInFourGroups() {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 200; i++) {
            String pass = AccessPass.generate(random);
            assertTrue(pass.matches("[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}"), pass);
            seen.add(pass);
        }
        assertEquals(200, seen.size(), "80 random bits: no repeats");
        assertEquals(32, AccessPass.ALPHABET.chars().distinct().count());
    }

    @Test
    void typedPassesAreReadForgivingly() {
        assertEquals("K7QF2M9XPT4AWC8E", AccessPass.normalize("k7qf 2m9x-pt4a-wc8e"));
        assertEquals("0111000000000000", AccessPass.normalize("OIL1-0000-0000-0000"));
        assertNull(AccessPass.normalize("K7QF-2M9X-PT4A"), "too short");
        assertNull(AccessPass.normalize("K7QF-2M9X-PT4A-WC8E-1"), "too long");
        assertNull(AccessPass.normalize("K7QF-2M9X-PT4A-WC8U"), "U is not in the alphabet");
        assertNull(AccessPass.normalize(null));
    }

    @Test
    void onlyTheSaltedHashIsStoredAndItMatchesOnlyThePass() {
        String pass = AccessPass.generate(random);
        String secret = AccessPass.secretData(pass, random);
        assertFalse(secret.contains(pass.replace("-", "")), "the pass itself is not stored");
        assertTrue(AccessPass.matches(secret, pass));
        assertTrue(AccessPass.matches(secret, pass.toLowerCase().replace("-", " ")));
        String other = AccessPass.generate(random);
        assertFalse(AccessPass.matches(secret, other));
        assertFalse(AccessPass.matches(secret, ""));
        assertFalse(AccessPass.matches("{}", pass), "no hash: nothing matches");
        assertFalse(AccessPass.matches("not json", pass));
        assertFalse(AccessPass.matches(secret.replace("sha256", "md5"), pass), "unknown algorithm");
        assertNotEquals(AccessPass.secretData(pass, random), secret, "a new salt each time");
    }

    @Test
    void theHashIsTheWrittenDefinition() {
        // docs/formats.md: hex SHA-256 of "<salt hex>:<canonical pass>"; tests/support/access_pass.py writes the same.
        assertEquals("9a42c02845f3d9f86670a5440e41ddad99ebdff3e9746d9f0b7f8ee71d66a958",
                AccessPass.hash("0011", "K7QF2M9XPT4AWC8E"), "the example of docs/formats.md");
        assertTrue(AccessPass.matches("{\"algorithm\":\"sha256\",\"salt\":\"0011\",\"hash\":\""
                + AccessPass.hash("0011", "K7QF2M9XPT4AWC8E") + "\"}", "K7QF-2M9X-PT4A-WC8E"));
    }

    @Test
    void aOncePassIsLiveUntilUsedAMultiPassAlways() {
        assertTrue(AccessPass.live(Map.of("kind", "pass", "pass_use", "once", "pass_used", "0")));
        assertTrue(AccessPass.live(Map.of("kind", "pass", "pass_use", "once")));
        assertFalse(AccessPass.live(Map.of("kind", "pass", "pass_use", "once", "pass_used", "1")));
        assertFalse(AccessPass.live(Map.of("kind", "pass", "pass_use", "once", "pass_used", "x")));
        assertTrue(AccessPass.live(Map.of("kind", "pass", "pass_use", "multi", "pass_used", "7")));
        assertFalse(AccessPass.live(Map.of("kind", "pass", "pass_use", "twice")));
        assertFalse(AccessPass.live(Map.of("kind", "password")));
        assertFalse(AccessPass.live(null));
    }
}
