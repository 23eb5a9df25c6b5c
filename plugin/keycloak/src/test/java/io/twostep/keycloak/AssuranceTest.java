package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The assurance rules: amr from completed authenticators, when the second factor runs, the bypass end. */
class AssuranceTest {

    @ParameterizedTest(name = "{0} bypassed={1} -> {2}")
    @CsvSource(delimiter = '|', value = {
        "auth-username-password-form                                  | false | pwd",
        "auth-username-password-form,auth-otp-form                    | false | pwd,otp,mfa",
        "auth-username-password-form,auth-recovery-authn-code-form    | false | pwd,otp,mfa",
        "auth-username-password-form,webauthn-authenticator           | false | pwd,hwk,mfa",
        "auth-cookie,auth-username-password-form,auth-otp-form        | false | pwd,otp,mfa",
        "direct-grant-validate-password,direct-grant-validate-otp     | false | pwd,otp,mfa",
        "auth-username-password-form                                  | true  | pwd",
        // a bypass claims no second factor, whatever else completed (an access pass, a stale note)
        "auth-username-password-form,auth-otp-form                    | true  | pwd",
        "auth-username-password-form,twostep-access-pass              | true  | pwd",
        "auth-otp-form                                                | false | otp",
        "auth-cookie                                                  | false | ''",
    })
    void amr(String completed, boolean bypassed, String expected) {
        List<String> want = expected.isEmpty() ? List.of() : Arrays.asList(expected.split(","));
        assertEquals(want, Assurance.amr(Arrays.asList(completed.split(",")), bypassed));
    }

    @Test
    void theSecondFactorRunsWhenRequiredOrAskedFor() {
        assertTrue(Assurance.runSecondFactor(true, -1));
        assertFalse(Assurance.runSecondFactor(false, -1), "a bypass without acr_values: password alone");
        assertFalse(Assurance.runSecondFactor(false, 1), "asking for the password level changes nothing");
        assertTrue(Assurance.runSecondFactor(false, 2), "asking for the second-factor level runs it");
        assertTrue(Assurance.runSecondFactor(false, 3));
    }

    @Test
    void secondFactorsAreOnlyRealOnes() {
        assertTrue(Assurance.isSecondFactor("auth-otp-form"));
        assertTrue(Assurance.isSecondFactor("auth-recovery-authn-code-form"));
        assertFalse(Assurance.isSecondFactor("auth-username-password-form"));
        assertFalse(Assurance.isSecondFactor("twostep-access-pass"));
        assertFalse(Assurance.isSecondFactor(null));
    }

    @Test
    void bypassEndInEpochSeconds() {
        assertEquals(1796083200L, Assurance.untilSeconds(Map.of("until", "2026-12-01T00:00:00Z")));
        assertNull(Assurance.untilSeconds(Map.of("until", "tomorrow")));
        assertNull(Assurance.untilSeconds(null));
    }
}
