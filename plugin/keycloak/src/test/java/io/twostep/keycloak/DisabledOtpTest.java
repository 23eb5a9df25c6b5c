package io.twostep.keycloak;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The purge rule of disabled OTP devices: a new device or 30 days end them; a damaged one goes. */
class DisabledOtpTest {

    private static final long AT = TwostepDecision.parseTime("2026-12-01T10:00:00Z");

    private static Map<String, String> record() {
        return DisabledOtp.record("phone", 1700000000000L, "{\"digits\":6}", "helpdesk", AT);
    }

    @Test
    void theRecordKeepsWhatRestoreNeeds() {
        Map<String, String> r = record();
        assertEquals("2026-12-01T10:00:00Z", r.get("disabled_at"));
        assertEquals("2026-12-31T10:00:00Z", r.get("purge_after"));
        assertEquals("helpdesk", r.get("by"));
        assertEquals("phone", r.get("label"));
        assertEquals("1700000000000", r.get("created"));
        assertEquals("{\"digits\":6}", r.get("otp_credential_data"));
    }

    @Test
    void keptForThirtyDaysUnlessANewDeviceCame() {
        assertFalse(DisabledOtp.purgeDue(AT, record(), false));
        assertFalse(DisabledOtp.purgeDue(AT + DisabledOtp.KEEP_MS - 1, record(), false), "the last millisecond");
        assertTrue(DisabledOtp.purgeDue(AT + DisabledOtp.KEEP_MS, record(), false), "30 days: purged");
        assertTrue(DisabledOtp.purgeDue(AT + 1000, record(), true), "a new device enrolled: purged at once");
    }

    @Test
    void aDamagedRecordIsPurgedNotRestored() {
        assertTrue(DisabledOtp.purgeDue(AT, null, false));
        Map<String, String> noTime = new HashMap<>(record());
        noTime.put("disabled_at", "yesterday");
        assertTrue(DisabledOtp.purgeDue(AT, noTime, false));
        Map<String, String> noData = new HashMap<>(record());
        noData.remove("otp_credential_data");
        assertTrue(DisabledOtp.purgeDue(AT, noData, false));
    }

    @Test
    void theSweepOpensOnlyDaysThatAreOver() {
        long purge = AT + DisabledOtp.KEEP_MS; // 2026-12-31T10:00:00Z
        assertEquals("2026-12-31", DisabledOtpIndex.bucketName(purge));
        assertFalse(DisabledOtpIndex.bucketOver("2026-12-31", purge), "the day itself: not yet");
        assertFalse(DisabledOtpIndex.bucketOver("2026-12-31", TwostepDecision.parseTime("2026-12-31T23:59:59Z")));
        assertTrue(DisabledOtpIndex.bucketOver("2026-12-31", TwostepDecision.parseTime("2027-01-01T00:00:00Z")));
        assertTrue(DisabledOtpIndex.bucketOver("not a day", AT), "an unreadable bucket is opened (and emptied)");
        // every record of a day that is over is due by the purge rule
        assertTrue(DisabledOtp.purgeDue(TwostepDecision.parseTime("2027-01-01T00:00:00Z"), record(), false));
    }

    @Test
    void anEntryIsDueOnceItsUserEnrolledOrItsDayIsOver() {
        long purge = AT + DisabledOtp.KEEP_MS; // 2026-12-31
        String day = DisabledOtpIndex.bucketName(purge);
        assertFalse(DisabledOtpIndex.entryDue(day, AT, false), "disabled a moment ago, no new device: kept");
        assertTrue(DisabledOtpIndex.entryDue(day, AT, true), "a new device: purged at once, day not over");
        assertFalse(DisabledOtpIndex.entryDue(day, purge, false), "the purge day itself: not yet");
        assertTrue(DisabledOtpIndex.entryDue(day, TwostepDecision.parseTime("2027-01-01T00:00:00Z"), false));
        assertTrue(DisabledOtpIndex.entryDue("damaged", AT, false), "an unreadable day is due");
        // the purge rule agrees: a user with a live device has nothing restorable left
        assertTrue(DisabledOtp.purgeDue(AT, record(), true));
    }
}
