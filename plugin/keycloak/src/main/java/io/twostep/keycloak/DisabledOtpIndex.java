package io.twostep.keycloak;

import jakarta.persistence.EntityManager;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.List;
import org.jboss.logging.Logger;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The disabled-device index (docs/formats.md, "Disabled devices"): top-level group
 * {@code twostep-otp-disabled}, one child per purge day ({@code YYYY-MM-DD}, UTC, the day of
 * {@code purge_after}), one child per user (named by the user id). The expiry task reads the entries
 * with one query ({@link #entries}: each with whether its user has a live OTP device again) and purges
 * those whose day is over or whose user enrolled a new device ({@link #entryDue}), so a run costs the
 * disabled devices, never the realm's users.
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

    /** One entry as the task reads it: its group, its user, its day, whether the user has a live OTP device. */
    public record Entry(String groupId, String userId, String day, boolean userHasOtp) {
    }

    /**
     * Pure: whether the task purges an entry now: its user enrolled a new device (the disabled one can
     * never come back, docs/formats.md), or its day is over (30 days, or an unreadable day).
     */
    public static boolean entryDue(String day, long nowMs, boolean userHasOtp) {
        return userHasOtp || bucketOver(day, nowMs);
    }

    /**
     * Every entry of the index under {@code rootId}, with whether its user has a live {@code otp}
     * credential, in one SQL statement: the days by their parent (the root), the entries by theirs (the
     * unique sibling-name index on realm, parent, name), the credentials by their user's index. The rows
     * are the disabled devices, never the realm's users.
     */
    public static List<Entry> entries(KeycloakSession session, RealmModel realm, String rootId) {
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        List<Object[]> rows = em.createQuery("select g.id, g.name, d.name, (select count(c.id) from CredentialEntity c"
                        + " where c.user.id = g.name and c.type = :otp) from GroupEntity d, GroupEntity g"
                        + " where d.realm = :realm and d.parentId = :root and g.realm = :realm and g.parentId = d.id",
                        Object[].class).setParameter("otp", DisabledOtp.OTP).setParameter("realm", realm.getId())
                .setParameter("root", rootId).getResultList();
        return rows.stream().map(r -> new Entry((String) r[0], (String) r[1], (String) r[2],
                r[3] instanceof Number n && n.longValue() > 0)).toList();
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
     * One entry that is due ({@link #entryDue}): the user's due disabled devices purged (with one admin
     * event by the task, only for devices this transaction deleted: a sign-in or a restore that purged
     * them first leaves nothing to record), then the entry removed. Returns how many devices went.
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
