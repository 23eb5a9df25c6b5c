package io.twostep.keycloak.admin;

import jakarta.ws.rs.core.Response;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.services.ErrorResponse;

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
        for (UserModel user : viewable(session, realm, ids, mayView)) {
            // The same list GET /users/{id}/credentials shows (UserResource.credentials).
            out.put(user.getId(), user.credentialManager().getCredentials().map(CredentialModel::getType).distinct()
                    .toList());
        }
        return out;
    }

    /**
     * The users of a page of ids ({@code ?id=..}, at most {@link #MAX_IDS}, else 400) that exist and the
     * caller may view, in the order asked, each once: what every per-page endpoint answers about.
     */
    static List<UserModel> viewable(KeycloakSession session, RealmModel realm, List<String> ids,
                                    Predicate<UserModel> mayView) {
        List<String> wanted = ids == null ? List.of() : ids;
        if (wanted.size() > MAX_IDS) {
            throw ErrorResponse.error("at most " + MAX_IDS + " users per call", Response.Status.BAD_REQUEST);
        }
        List<UserModel> out = new ArrayList<>();
        for (String id : new LinkedHashSet<>(wanted)) {
            UserModel user = id == null || id.isBlank() ? null : session.users().getUserById(realm, id);
            if (user != null && mayView.test(user)) {
                out.add(user);
            }
        }
        return out;
    }
}
