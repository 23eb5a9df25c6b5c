package io.twostep.keycloak.admin;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The credential types of a page of users, for the exports (docs/provider.md): one admin call per
 * page instead of one {@code GET /users/{id}/credentials} per user. Types only, never a credential's
 * data. A user the caller may not view ({@code canView}), or who does not exist, is left out of the
 * answer: the caller then reads that user on its own and gets Keycloak's own refusal.
 */
final class CredentialTypes {

    /** Ids read per call: an export's page. */
    static final int MAX_IDS = 100;

    private CredentialTypes() {
    }

    static Map<String, List<String>> of(KeycloakSession session, RealmModel realm, List<String> ids,
                                        Predicate<UserModel> mayView) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        for (String id : new LinkedHashSet<>(ids)) {
            if (id == null || id.isBlank()) {
                continue;
            }
            UserModel user = session.users().getUserById(realm, id);
            if (user == null || !mayView.test(user)) {
                continue;
            }
            // The same list GET /users/{id}/credentials shows (UserResource.credentials).
            out.put(id, user.credentialManager().getCredentials().map(CredentialModel::getType).distinct().toList());
        }
        return out;
    }
}
