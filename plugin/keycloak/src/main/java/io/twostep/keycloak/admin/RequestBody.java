package io.twostep.keycloak.admin;

import jakarta.ws.rs.core.Response;
import java.util.Map;
import org.keycloak.services.ErrorResponse;
import org.keycloak.services.ErrorResponseException;

/**
 * The fields of the admin endpoints' JSON bodies, read strictly: a field of the wrong type is a 400
 * with one line naming it, never a guess (docs/provider.md). Absent fields read as null.
 */
final class RequestBody {

    private RequestBody() {
    }

    static String text(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null || v instanceof String) {
            return (String) v;
        }
        throw bad(key + " must be a string");
    }

    static Long number(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Integer || v instanceof Long) {
            return ((Number) v).longValue();
        }
        throw bad(key + " must be a whole number");
    }

    static boolean flag(Map<String, Object> in, String key) {
        return Boolean.TRUE.equals(optionalFlag(in, key));
    }

    static Boolean optionalFlag(Map<String, Object> in, String key) {
        Object v = in.get(key);
        if (v == null || v instanceof Boolean) {
            return (Boolean) v;
        }
        throw bad(key + " must be true or false");
    }

    static ErrorResponseException bad(String message) {
        return ErrorResponse.error(message, Response.Status.BAD_REQUEST);
    }

    static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }
}
