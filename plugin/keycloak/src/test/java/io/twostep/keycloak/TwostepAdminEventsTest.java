package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.reflect.Proxy;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.keycloak.models.UserModel;

/** The pure parts of the admin events: the resource path and the extension's representation. */
class TwostepAdminEventsTest {

    private static final UserModel CAROL = (UserModel) Proxy.newProxyInstance(
            TwostepAdminEventsTest.class.getClassLoader(), new Class<?>[] {UserModel.class},
            (p, m, a) -> switch (m.getName()) {
                case "getUsername" -> "carol";
                case "getId" -> "u-1";
                default -> null;
            });

    @ParameterizedTest(name = "{0}/{1}")
    @CsvSource(delimiter = '|', value = {
        "u-1 | bypass.grant | twostep/users/u-1/bypass.grant",  // the extension: what was done
        "u-1 | bypass       | twostep/users/u-1/bypass",        // the expiry task's end of a bypass
        "u-1 | grace        | twostep/users/u-1/grace",
    })
    void resourcePath(String userId, String what, String path) {
        assertEquals(path, TwostepAdminEvents.resourcePath(userId, what));
    }

    /** until | reason | extra (k=v, comma-separated; "-" for a null value) | the representation's keys=values. */
    @ParameterizedTest(name = "until={0} reason={1} extra={2}")
    @CsvSource(delimiter = '|', nullValues = "null", value = {
        "2026-12-01T20:00:00Z | lost phone | by=boss      | what=bypass.grant who=hilde@r whom=carol user_id=u-1 until=2026-12-01T20:00:00Z reason=lost phone by=boss",
        "null                 | null       | null         | what=bypass.grant who=hilde@r whom=carol user_id=u-1",
        "null                 | back       | by=-,n=1     | what=bypass.grant who=hilde@r whom=carol user_id=u-1 reason=back n=1",  // null values left out
    })
    void representation(String until, String reason, String extra, String expected) {
        Map<String, Object> more = null;
        if (extra != null) {
            more = new LinkedHashMap<>();
            for (String kv : extra.split(",")) {
                String[] p = kv.split("=");
                more.put(p[0], p[1].equals("-") ? null : p[1]);
            }
        }
        Map<String, Object> rep = TwostepAdminEvents.representation("bypass.grant", "hilde@r", CAROL, until, reason,
                more);
        StringBuilder got = new StringBuilder();
        rep.forEach((k, v) -> got.append(got.length() == 0 ? "" : " ").append(k).append('=').append(v));
        assertEquals(expected, got.toString());
    }
}
