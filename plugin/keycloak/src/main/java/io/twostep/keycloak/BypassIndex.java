package io.twostep.keycloak;

import jakarta.persistence.EntityManager;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
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
 * The bypass index of provider mode (docs/formats.md, "The bypass index"), written from Java in the
 * same shape Python writes and reads it:
 *
 * <pre>
 * twostep-bypass                       top-level group (the index root)
 *   2026-12-01T20                      bucket: the UTC hour of the record's until
 *     &lt;user id&gt;.&lt;credential id&gt;       entry: one record version (attributes until, granted_at, ...)
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
    public static final int ATTRIBUTE_MAX = 200;
    private static final Logger LOG = Logger.getLogger(BypassIndex.class);
    private static final DateTimeFormatter BUCKET =
            DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH").withZone(ZoneOffset.UTC);

    private BypassIndex() {
    }

    public static String bucketName(long untilMillis) {
        return BUCKET.format(Instant.ofEpochMilli(untilMillis));
    }

    public static String entryName(String userId, String credentialId) {
        return userId + "." + credentialId;
    }

    /** The root, or null when missing (never created here: see {@link #ensureBucket}). */
    public static GroupModel root(KeycloakSession session, RealmModel realm) {
        return session.groups().getTopLevelGroupsStream(realm, ROOT, true, 0, 10)
                .filter(g -> ROOT.equals(g.getName())).findFirst().orElse(null);
    }

    public static GroupModel child(GroupModel parent, String name) {
        return parent.getSubGroupsStream(name, true, 0, 10).filter(g -> name.equals(g.getName())).findFirst()
                .orElse(null);
    }

    /**
     * The root and the bucket of that hour exist and are committed, in a transaction of their own.
     * A create that loses a race with another one is fine: the group is there either way.
     */
    public static void ensureBucket(KeycloakSession session, RealmModel realm, String bucket) {
        GroupModel root = root(session, realm);
        if (root != null && child(root, bucket) != null) {
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
                if (child(top, bucket) == null) {
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
        GroupModel bucket = Objects.requireNonNull(child(root, name), "index bucket missing");
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
