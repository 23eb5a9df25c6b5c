package io.twostep.keycloak.admin;

import io.twostep.keycloak.BypassCredentialProvider;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * {@code GET twostep/users/bypass-records?id=..}: the bypass records of a page of users, for the admin
 * pages' users list (docs/provider.md). The list shows each row's bypass state, and an admin under
 * fine-grained admin permissions v2 (a delegated admin) may read neither the expiry index's groups nor
 * list groups at all; one call per page answers for every user the caller may view, whatever their
 * permissions on groups.
 *
 * <p>Per user: the {@code twostep-bypass} credentials as {@code GET /users/{id}/credentials} shows them to
 * whoever may view the user (type, {@code credentialData}, {@code createdDate}; never {@code secretData},
 * where an access pass's hash is), an empty list when the user has none. A user the caller may not view
 * ({@code users().canView(user)}), or who does not exist, is left out: the answer discloses nothing
 * Keycloak would not show the caller.
 */
final class BypassRecords {

    private BypassRecords() {
    }

    static Map<String, List<Map<String, Object>>> of(KeycloakSession session, RealmModel realm, List<String> ids,
                                                     Predicate<UserModel> mayView) {
        Map<String, List<Map<String, Object>>> out = new LinkedHashMap<>();
        for (UserModel user : CredentialTypes.viewable(session, realm, ids, mayView)) {
            out.put(user.getId(), UserWrites.stored(user, BypassCredentialProvider.TYPE).stream()
                    .map(BypassRecords::shown).toList());
        }
        return out;
    }

    private static Map<String, Object> shown(CredentialModel c) {
        Map<String, Object> rep = new LinkedHashMap<>();
        rep.put("id", c.getId());
        rep.put("type", c.getType());
        rep.put("createdDate", c.getCreatedDate());
        rep.put("credentialData", c.getCredentialData());
        return rep;
    }
}
