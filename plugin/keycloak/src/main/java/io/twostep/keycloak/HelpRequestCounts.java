package io.twostep.keycloak;

import java.util.List;
import java.util.Map;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.SingleUseObjectProvider;

/**
 * Where the per-user and per-address filings are counted: Keycloak's single-use-object store
 * ({@code SingleUseObjectProvider}, the cluster-wide store Keycloak keeps action tokens and
 * revoked tokens in), one entry per user and per source address of a realm, each with a lifespan of
 * its window (a day, an hour), so it goes by itself. One entry holds at most the limit's number of
 * times ({@link HelpRequestLimits#afterFiling}). Only accepted filings are written: refusals cost
 * nothing, and the number of entries is bounded by the filings the realm-wide limit lets through.
 *
 * <p>Not a quota: two filings at the same instant can both read the old list (the store has no
 * compare-and-set), so a limit can be passed by one. The store is memory of the cluster: a restart
 * of every node forgets the counts (the realm-wide limit, read from the requests, stays).
 */
final class HelpRequestCounts {

    static final String NOTE = "t";

    private HelpRequestCounts() {
    }

    static String userKey(RealmModel realm, String userId) {
        return "twostep.help.user." + realm.getId() + "." + userId;
    }

    /** The address as Keycloak's connection reports it (proxy headers honoured as configured); an
     * unknown address is one shared key, so it is limited too. */
    static String addressKey(RealmModel realm, String address) {
        String a = address == null || address.isBlank() ? "unknown" : address.strip();
        return "twostep.help.addr." + realm.getId() + "." + a;
    }

    static List<Long> read(KeycloakSession session, String key) {
        Map<String, String> notes = store(session).get(key);
        return HelpRequestLimits.parseTimes(notes == null ? null : notes.get(NOTE));
    }

    static void record(KeycloakSession session, String key, long nowMillis, long windowMs, int limit) {
        if (limit <= 0) {
            return;
        }
        List<Long> kept = HelpRequestLimits.afterFiling(read(session, key), nowMillis, windowMs, limit);
        store(session).put(key, windowMs / 1000 + 1, Map.of(NOTE, HelpRequestLimits.formatTimes(kept)));
    }

    private static SingleUseObjectProvider store(KeycloakSession session) {
        SingleUseObjectProvider store = session.getProvider(SingleUseObjectProvider.class);
        if (store == null) {
            throw new IllegalStateException("no single-use-object store");
        }
        return store;
    }
}
