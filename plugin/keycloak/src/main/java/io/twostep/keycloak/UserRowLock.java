package io.twostep.keycloak;

import jakarta.persistence.EntityManager;
import jakarta.persistence.LockModeType;
import java.util.List;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.cache.UserCache;
import org.keycloak.storage.UserStorageUtil;

/**
 * Serialises every twostep change to one user through the database: a pessimistic write lock on the
 * user's row ({@code SELECT ... FOR UPDATE} on H2, PostgreSQL, MySQL, ...), held until the
 * transaction of the request commits or rolls back. A second change to the same user waits for the
 * first to end and then reads what it wrote. No role, group or other marker is created to lock.
 */
public final class UserRowLock {

    private UserRowLock() {
    }

    /**
     * Locks the user's row, then returns the user read afresh (the user cache of this session is told
     * to go to the database, so a change another node or request committed a moment ago is seen).
     * Call it before anything reads the user's credentials in this transaction. Null: no such user in
     * Keycloak's database.
     */
    public static UserModel lockAndRead(KeycloakSession session, RealmModel realm, String userId) {
        EntityManager em = session.getProvider(JpaConnectionProvider.class).getEntityManager();
        // JPQL by entity name (no compile-time tie to Keycloak's entity classes); Hibernate writes the
        // lock clause of the database's dialect. The row may already be in this transaction's
        // persistence context (read before the lock): refreshed, so what follows sees the committed state.
        List<Object> rows = em.createQuery("select u from UserEntity u where u.id = :id and u.realmId = :realm",
                        Object.class).setParameter("id", userId).setParameter("realm", realm.getId())
                .setLockMode(LockModeType.PESSIMISTIC_WRITE).getResultList();
        if (rows.isEmpty()) {
            return null;
        }
        em.refresh(rows.get(0));
        UserCache cache = UserStorageUtil.userCache(session);
        UserModel user = session.users().getUserById(realm, userId);
        if (cache != null && user != null) {
            cache.evict(realm, user);
            user = session.users().getUserById(realm, userId);
        }
        return user;
    }
}
