package io.twostep.keycloak;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;

/**
 * The temporary access pass (docs/formats.md, "The access pass"): 80 random bits written as 16
 * characters of Crockford's base32 in four groups ({@code K7QF-2M9X-PT4A-WC8E}), stored only as
 * SHA-256 over a per-record random salt and the pass. Pure: no Keycloak types, the randomness passed in.
 *
 * <p>Why SHA-256 and not a slow hash: the pass is 80 random bits, not a chosen password. Guessing it
 * from a stolen hash costs 2^79 SHA-256 on average, out of reach; stretching (PBKDF2) would only make
 * every sign-in attempt costlier for Keycloak. The salt keeps two users' hashes unrelated and rules
 * out precomputed tables; online guessing is Keycloak's brute-force protection's job.
 */
public final class AccessPass {

    /** Crockford's base32: no I, L, O, U (read aloud without confusion). */
    public static final String ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    public static final int LENGTH = 16;
    public static final String ALGORITHM = "sha256";
    private static final ObjectMapper JSON = new ObjectMapper();

    private AccessPass() {
    }

    /** A new pass, grouped {@code XXXX-XXXX-XXXX-XXXX}. */
    public static String generate(SecureRandom random) {
        StringBuilder out = new StringBuilder(LENGTH + 3);
        for (int i = 0; i < LENGTH; i++) {
            if (i > 0 && i % 4 == 0) {
                out.append('-');
            }
            out.append(ALPHABET.charAt(random.nextInt(32)));
        }
        return out.toString();
    }

    /**
     * The pass as typed, in its canonical form (16 characters, no dashes), or null when it cannot be a
     * pass. Spaces and dashes are ignored, lower case counts as upper, and O, I, L read as 0, 1, 1.
     */
    public static String normalize(String typed) {
        if (typed == null) {
            return null;
        }
        StringBuilder out = new StringBuilder(LENGTH);
        for (char c : typed.toUpperCase(Locale.ROOT).toCharArray()) {
            if (c == '-' || Character.isWhitespace(c)) {
                continue;
            }
            char d = c == 'O' ? '0' : (c == 'I' || c == 'L') ? '1' : c;
            if (ALPHABET.indexOf(d) < 0 || out.length() == LENGTH) {
                return null;
            }
            out.append(d);
        }
        return out.length() == LENGTH ? out.toString() : null;
    }

    /** The secretData stored for a pass: {@code {"algorithm":"sha256","hash":hex,"salt":hex}}. */
    public static String secretData(String pass, SecureRandom random) {
        byte[] salt = new byte[16];
        random.nextBytes(salt);
        String hex = HexFormat.of().formatHex(salt);
        return "{\"algorithm\":\"" + ALGORITHM + "\",\"hash\":\"" + hash(hex, normalize(pass))
                + "\",\"salt\":\"" + hex + "\"}";
    }

    /** Hex SHA-256 of the UTF-8 bytes of {@code salt + ":" + canonical pass}. */
    public static String hash(String saltHex, String canonical) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(sha.digest((saltHex + ":" + canonical).getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether the typed pass matches the stored secretData; false for anything unreadable. Constant time. */
    public static boolean matches(String secretData, String typed) {
        String canonical = normalize(typed);
        if (canonical == null || secretData == null) {
            return false;
        }
        try {
            JsonNode node = JSON.readTree(secretData);
            if (node == null || !node.isObject() || !ALGORITHM.equals(text(node, "algorithm"))) {
                return false;
            }
            String salt = text(node, "salt");
            String stored = text(node, "hash");
            if (salt == null || salt.isEmpty() || stored == null) {
                return false;
            }
            return MessageDigest.isEqual(hash(salt, canonical).getBytes(StandardCharsets.US_ASCII),
                    stored.toLowerCase(Locale.ROOT).getBytes(StandardCharsets.US_ASCII));
        } catch (Exception e) {
            return false;
        }
    }

    private static String text(JsonNode node, String key) {
        JsonNode v = node.get(key);
        return v != null && v.isTextual() ? v.asText() : null;
    }

    /** A pass record (kind {@code pass}) whose pass may still be used: multi, or once and not used yet. */
    public static boolean live(Map<String, String> record) {
        if (record == null || !TwostepDecision.KIND_PASS.equals(record.get("kind"))) {
            return false;
        }
        String use = record.get("pass_use");
        if ("multi".equals(use)) {
            return true;
        }
        return "once".equals(use) && "0".equals(record.getOrDefault("pass_used", "0"));
    }
}
