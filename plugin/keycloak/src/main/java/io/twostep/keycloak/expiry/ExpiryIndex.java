package io.twostep.keycloak.expiry;

import java.util.List;
import java.util.stream.Collectors;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;

/**
 * Reads the bypass index of docs/formats.md through Keycloak's model (the groups Python writes over
 * REST): the root {@code twostep-bypass}, its buckets by the hour records end, their entries. Only
 * buckets whose hour has begun are opened, so a run costs the buckets' names plus the entries that
 * can be due, whatever the realm's size.
 */
final class ExpiryIndex {

    static final String ROOT = "twostep-bypass";

    private ExpiryIndex() {
    }

    static GroupModel root(KeycloakSession session, RealmModel realm) {
        return top(session, realm, ROOT);
    }

    /** The top-level group of that exact name (one search), or null. */
    static GroupModel top(KeycloakSession session, RealmModel realm, String name) {
        return session.groups().getTopLevelGroupsStream(realm, name, true, 0, 2)
                .filter(g -> name.equals(g.getName())).findFirst().orElse(null);
    }

    static List<GroupModel> buckets(GroupModel root) {
        return root.getSubGroupsStream().collect(Collectors.toList());
    }

    /** The entries of one bucket, with their claims read (a claim is rare: only those cost a read). */
    static List<ExpiryRules.Entry> entries(GroupModel bucket) {
        return bucket.getSubGroupsStream().map(ExpiryIndex::entry).collect(Collectors.toList());
    }

    static ExpiryRules.Entry entry(GroupModel g) {
        GroupModel claim = claim(g);
        return new ExpiryRules.Entry(g.getId(), g.getName(), g.getFirstAttribute("until"), claim != null,
                claim == null ? null : claim.getFirstAttribute("at"));
    }

    static GroupModel claim(GroupModel entry) {
        Long count = entry.getSubGroupsCount();
        if (count != null && count == 0) {
            return null;
        }
        return entry.getSubGroupsStream().filter(c -> ExpiryRules.CLAIM.equals(c.getName())).findFirst()
                .orElse(null);
    }
}
