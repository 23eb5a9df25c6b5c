package io.twostep.keycloak;

import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import org.jboss.logging.Logger;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The disabled-device index (docs/formats.md, "Disabled devices"): top-level group
 * {@code twostep-otp-disabled}, one child per purge day ({@code YYYY-MM-DD}, UTC, the day of
 * {@code purge_after}), one child per user (named by the user id). The expiry task opens only the days
 * that are over, so a sweep costs the due entries, never the realm's users.
 */
public final class DisabledOtpIndex {

    public static final String ROOT = "twostep-otp-disabled";
    private static final Logger LOG = Logger.getLogger(DisabledOtpIndex.class);
    private static final DateTimeFormatter DAY = DateTimeFormatter.ISO_LOCAL_DATE;
    private static final long DAY_MS = 24L * 3600 * 1000;

    private DisabledOtpIndex() {
    }

    /** Pure: the bucket of a purge time. */
    public static String bucketName(long purgeAfterMs) {
        return DAY.format(Instant.ofEpochMilli(purgeAfterMs).atZone(ZoneOffset.UTC).toLocalDate());
    }

    /** Pure: whether every record of that bucket is due (its day is over); an unreadable name is. */
    public static boolean bucketOver(String name, long nowMs) {
        try {
            long start = LocalDate.parse(name, DAY).atStartOfDay(ZoneOffset.UTC).toInstant().toEpochMilli();
            return nowMs >= start + DAY_MS;
        } catch (DateTimeParseException e) {
            return true;
        }
    }

    /**
     * Files the user under the purge day, in a transaction of its own (idempotent; a filing left by a
     * change that then rolled back only costs the sweep one look-up). Never throws.
     */
    public static void note(KeycloakSession session, RealmModel realm, String userId, long purgeAfterMs) {
        try {
            Groups.fileInOwnTransaction(session, realm, ROOT, bucketName(purgeAfterMs), userId);
        } catch (RuntimeException e) {
            LOG.debugf("twostep: disabled device not indexed (%s); purged at sign-in", e.getClass().getSimpleName());
        }
    }

    /**
     * One entry of a day that is over: the user's due disabled devices purged (with one admin event by
     * the task), then the entry removed. Returns how many devices went.
     */
    public static int sweep(KeycloakSession session, RealmModel realm, String entryId, long nowMs) {
        GroupModel entry = session.groups().getGroupById(realm, entryId);
        if (entry == null) {
            return 0;
        }
        UserModel user = session.users().getUserById(realm, entry.getName());
        int gone = user == null ? 0 : DisabledOtp.purge(user, nowMs);
        if (gone > 0) {
            java.util.Map<String, String> details = new java.util.TreeMap<>();
            details.put("action", "otp.purge");
            details.put("user_id", user.getId());
            details.put("username", user.getUsername());
            details.put("devices_purged", String.valueOf(gone));
            TwostepAdminEvents.writeAsTask(session, realm, user.getId(), "otp.purge", details, nowMs);
        }
        session.groups().removeGroup(realm, entry);
        return gone;
    }
}
