package io.twostep.keycloak;

import jakarta.persistence.EntityManager;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.jboss.logging.Logger;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.utils.KeycloakModelUtils;

/**
 * The bypass index of provider mode (docs/formats.md, "The bypass index"): its names and its reads
 * and writes, for the admin extension (writes entries with the record) and the expiry task (ends
 * them), in the same shape Python writes and reads it:
 *
 * <pre>
 * twostep-bypass                       top-level group (the index root)
 *   2026-12-01T20                      bucket: the UTC hour of the record's until
 *     &lt;user id&gt;.&lt;credential id&gt;       entry: one record version (attributes until, granted_at, ...)
 *       ending                         claim: made by the one run that ends the record
 * </pre>
 *
 * Entries are written in the caller's transaction (they commit or roll back with the record). The
 * root and the bucket, shared by every user whose record ends in that hour, are made in their own
 * short transaction ({@link #ensureBucket}): two grants to different users in one hour must not
 * meet on the sibling-name constraint at commit, and an empty bucket left by a grant that then
 * failed is harmless (sync deletes buckets whose hour is over).
 */
public final class BypassIndex {

    public static final String ROOT = "twostep-bypass";
    /** The claim's name under an entry: made by the one run that ends the record. */
    public static final String CLAIM = "ending";
    public static final int ATTRIBUTE_MAX = 200;
    private static final Logger LOG = Logger.getLogger(BypassIndex.class);
    private static final DateTimeFormatter BUCKET =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH").withZone(ZoneOffset.UTC);

    private BypassIndex() {
    }

    /**
     * One entry as read: {@code <user id>.<credential id>}, its {@code until}, whether it is claimed,
     * when and by whom ({@code claimBy}: null when unknown).
     */
    public record Entry(String groupId, String name, String untilRaw, boolean claimed, String claimAtRaw,
                        String claimBy) {
        public Entry(String groupId, String name, String untilRaw, boolean claimed, String claimAtRaw) {
            this(groupId, name, untilRaw, claimed, claimAtRaw, null);
        }

        /** Before the first dot; "" when the name has none (or starts with it). */
        public String userId() {
            int dot = name.indexOf('.');
            return dot > 0 ? name.substring(0, dot) : "";
        }

        public String credentialId() {
            int dot = name.indexOf('.');
            return dot > 0 ? name.substring(dot + 1) : "";
        }

        public boolean wellNamed() {
            return !userId().isEmpty() && !credentialId().isEmpty();
        }
    }

    /** The bucket of a time: its UTC hour, {@code YYYY-MM-DDTHH}. */
    public static String bucketName(long millis) {
        return BUCKET.format(Instant.ofEpochMilli(millis));
    }

    /** [start, end) of a bucket named {@code YYYY-MM-DDTHH} (UTC), or null for any other name. */
    public static long[] bucketSpan(String name) {
        if (name == null || name.length() != 13) {
            return null;
        }
        try {
            long start = LocalDateTime.parse(name + ":00", DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm"))
                    .toInstant(ZoneOffset.UTC).toEpochMilli();
            return new long[] {start, start + 3_600_000L};
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    public static String entryName(String userId, String credentialId) {
        return userId + "." + credentialId;
    }

    /** The root, or null when missing (never created here: see {@link #ensureBucket}). */
    public static GroupModel root(KeycloakSession session, RealmModel realm) {
        return Groups.top(session, realm, ROOT);
    }

    /**
     * The entries of one bucket with their {@code until} and their claims (when and by whom), in one SQL
     * statement: the entries by their parent (the unique sibling-name index on realm, parent, name),
     * each attribute and the claim by their group. Read from the database, not Keycloak's group cache:
     * a run costs one statement per bucket whose hour has begun, not a read per entry (and per claim).
     */
    public static List<Entry> entries(KeycloakSession session, RealmModel realm, String bucketId) {
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        // Joins, not correlated subqueries: each lookup goes through an index (the attribute by its group,
        // the claim by realm, parent and name), so the rows read are the bucket's entries and claims.
        List<Object[]> rows = em.createQuery("select g.id, g.name, u.value, c.id, ca.value, cb.value"
                        + " from GroupEntity g"
                        + " left join GroupAttributeEntity u on u.group = g and u.name = 'until'"
                        + " left join GroupEntity c on c.realm = :realm and c.parentId = g.id and c.name = :claim"
                        + " left join GroupAttributeEntity ca on ca.group = c and ca.name = 'at'"
                        + " left join GroupAttributeEntity cb on cb.group = c and cb.name = 'by'"
                        + " where g.realm = :realm and g.parentId = :bucket", Object[].class)
                .setParameter("realm", realm.getId()).setParameter("bucket", bucketId).setParameter("claim", CLAIM)
                .getResultList();
        Map<String, Entry> byId = new LinkedHashMap<>(); // an attribute stored twice: its first row
        for (Object[] r : rows) {
            byId.putIfAbsent((String) r[0], new Entry((String) r[0], (String) r[1], (String) r[2], r[3] != null,
                    (String) r[4], (String) r[5]));
        }
        return List.copyOf(byId.values());
    }

    public static Entry entry(GroupModel g) {
        GroupModel claim = claim(g);
        return new Entry(g.getId(), g.getName(), g.getFirstAttribute("until"), claim != null,
                claim == null ? null : claim.getFirstAttribute("at"), claim == null ? null : claim.getFirstAttribute("by"));
    }

    /** The entry's claim, or null. */
    public static GroupModel claim(GroupModel entry) {
        Long count = entry.getSubGroupsCount();
        if (count != null && count == 0) {
            return null;
        }
        return Groups.child(entry, CLAIM);
    }

    /**
     * The root and the bucket of that hour exist and are committed, in a transaction of their own.
     * A create that loses a race with another one is fine: the group is there either way.
     */
    public static void ensureBucket(KeycloakSession session, RealmModel realm, String bucket) {
        GroupModel root = root(session, realm);
        if (root != null && Groups.child(root, bucket) != null) {
            return;
        }
        String realmId = realm.getId();
        try {
            KeycloakModelUtils.runJobInTransaction(session.getKeycloakSessionFactory(), s -> {
                RealmModel r = s.realms().getRealm(realmId);
                GroupModel top = root(s, r);
                if (top == null) {
                    top = s.groups().createGroup(r, ROOT);
                }
                if (Groups.child(top, bucket) == null) {
                    s.groups().createGroup(r, bucket, top);
                }
            });
        } catch (RuntimeException e) {
            // Made meanwhile by another request (the name is unique among siblings): looked up below.
            LOG.debugf("twostep: bucket %s made concurrently (%s)", bucket, e.getClass().getSimpleName());
        }
    }

    /**
     * The entry of one record version, in the caller's transaction; the bucket must exist
     * ({@link #ensureBucket}). Returns the entry's group.
     */
    public static GroupModel addEntry(KeycloakSession session, RealmModel realm, String userId, String credentialId,
                                      String username, Map<String, String> record) {
        Long until = TwostepDecision.parseTime(record.get("until"));
        String name = bucketName(until == null ? 0 : until);
        GroupModel root = Objects.requireNonNull(root(session, realm), "index root missing");
        GroupModel bucket = Objects.requireNonNull(Groups.child(root, name), "index bucket missing");
        GroupModel entry = session.groups().createGroup(realm, entryName(userId, credentialId), bucket);
        entry.setSingleAttribute("until", record.getOrDefault("until", ""));
        entry.setSingleAttribute("granted_at", record.getOrDefault("granted_at", ""));
        entry.setSingleAttribute("username", username == null ? "" : username);
        entry.setSingleAttribute("by", cut(record.getOrDefault("by", "")));
        entry.setSingleAttribute("reason", cut(record.getOrDefault("reason", "")));
        entry.setSingleAttribute("reset_device", "true".equals(record.get("reset_device")) ? "true" : "false");
        return entry;
    }

    /** Every entry of one user (any bucket), by one query on the group names. */
    public static List<GroupModel> entriesOf(KeycloakSession session, RealmModel realm, String userId) {
        GroupModel root = root(session, realm);
        if (root == null) {
            return List.of();
        }
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        List<String> ids = em.createQuery("select g.id from GroupEntity g where g.realm = :realm and g.name like :p",
                        String.class).setParameter("realm", realm.getId()).setParameter("p", userId + ".%")
                .getResultList();
        String prefix = userId + ".";
        return ids.stream().map(id -> session.groups().getGroupById(realm, id)).filter(Objects::nonNull)
                .filter(g -> g.getName().startsWith(prefix) && g.getParent() != null
                        && root.getId().equals(g.getParent().getParentId()))
                .toList();
    }

    /** Removes the user's entries except {@code keepId} (null: all of them). Returns how many went. */
    public static int removeEntries(KeycloakSession session, RealmModel realm, String userId, String keepId) {
        int removed = 0;
        for (GroupModel g : entriesOf(session, realm, userId)) {
            if (!g.getId().equals(keepId)) {
                session.groups().removeGroup(realm, g);
                removed++;
            }
        }
        return removed;
    }

    private static String cut(String s) {
        return s.length() <= ATTRIBUTE_MAX ? s : s.substring(0, ATTRIBUTE_MAX);
    }
}
