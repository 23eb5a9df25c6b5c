package io.twostep.keycloak;

import org.keycloak.authentication.Authenticator;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * What twostep's own options of the second-factor subflow (the access pass, the help request) share:
 * both come after the password step (they require a user), set nothing up themselves, and are offered
 * to a user only when {@link #offeredTo} says so. A failure to read the user's credentials offers
 * nothing (fail closed: Keycloak then goes on to the user's own factors).
 */
abstract class SecondFactorOption implements Authenticator {

    /** Whether the option is listed for this user; an exception counts as no. */
    abstract boolean offeredTo(UserModel user);

    @Override
    public final boolean configuredFor(KeycloakSession session, RealmModel realm, UserModel user) {
        try {
            return offeredTo(user);
        } catch (RuntimeException e) {
            return false;
        }
    }

    @Override
    public final boolean requiresUser() {
        return true;
    }

    @Override
    public void setRequiredActions(KeycloakSession session, RealmModel realm, UserModel user) {
        // Nothing to set up: an admin grants the pass or answers the request.
    }

    @Override
    public void close() {
    }
}
