package io.twostep.keycloak.expiry;

import io.twostep.keycloak.BypassCredentialProvider;
import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.TwostepAdminEvents;
import io.twostep.keycloak.TwostepCondition;
import io.twostep.keycloak.TwostepDecision;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;

/**
 * Ends one bypass record version through its index entry, inside one Keycloak transaction (the
 * caller's): the claim, the sessions opened during the window (online and offline), the record
 * credential and the one admin event commit together or not at all. A claim that already exists
 * (sync or another node ended it) makes this a no-op; two claims made at the same instant meet the
 * database's unique sibling names and one transaction fails whole.
 */
final class BypassEnder {

    /** What one end did. {@code ended} false: nothing to do (claimed or gone meanwhile). */
    record Result(boolean ended, int sessions, int offlineSessions) {
        static final Result NOTHING = new Result(false, 0, 0);
    }

    private BypassEnder() {
    }

    static Result end(KeycloakSession session, RealmModel realm, String entryGroupId, long nowMs) {
        GroupModel entry = session.groups().getGroupById(realm, entryGroupId);
        if (entry == null) {
            return Result.NOTHING;
        }
        BypassIndex.Entry e = BypassIndex.entry(entry); // the claim read once, in this transaction
        if (e.claimed()) {
            return Result.NOTHING;
        }
        GroupModel claim = session.groups().createGroup(realm, BypassIndex.CLAIM, entry);
        claim.setSingleAttribute("at", TwostepDecision.formatTime(nowMs));
        claim.setSingleAttribute("by", TwostepAdminEvents.TASK_ACTOR);

        UserModel user = session.users().getUserById(realm, e.userId());
        Map<String, String> record = null;
        int online = 0;
        int offline = 0;
        if (user != null) {
            CredentialModel cred = user.credentialManager().getStoredCredentialById(e.credentialId());
            if (cred != null && BypassCredentialProvider.TYPE.equals(cred.getType())) {
                record = TwostepCondition.parseRecord(cred.getCredentialData());
            }
            // The window: the record's own times (it is the truth); else the copy in the entry.
            String granted = record != null ? record.get("granted_at") : entry.getFirstAttribute("granted_at");
            String until = record != null ? record.get("until") : e.untilRaw();
            for (UserSessionModel s : window(session.sessions().getUserSessionsStream(realm, user).toList(),
                    granted, until, nowMs)) {
                session.sessions().removeUserSession(realm, s);
                online++;
            }
            for (UserSessionModel s : window(session.sessions().getOfflineUserSessionsStream(realm, user).toList(),
                    granted, until, nowMs)) {
                session.sessions().removeOfflineUserSession(realm, s);
                offline++;
            }
            if (cred != null && BypassCredentialProvider.TYPE.equals(cred.getType())) {
                user.credentialManager().removeStoredCredentialById(cred.getId());
            }
        }
        Map<String, String> details = new HashMap<>();
        details.put("action", "bypass.expire");
        details.put("user_id", e.userId());
        details.put("username", user != null ? user.getUsername() : nz(entry.getFirstAttribute("username")));
        details.put("until", record != null ? nz(record.get("until")) : nz(e.untilRaw()));
        details.put("granted_at", record != null ? nz(record.get("granted_at"))
                : nz(entry.getFirstAttribute("granted_at")));
        details.put("granted_by", record != null ? nz(record.get("by")) : nz(entry.getFirstAttribute("by")));
        details.put("grant_reason", record != null ? nz(record.get("reason")) : nz(entry.getFirstAttribute("reason")));
        details.put("reason", "bypass time is up");
        details.put("sessions_ended", Integer.toString(online));
        details.put("offline_sessions_ended", Integer.toString(offline));
        TwostepAdminEvents.writeAsTask(session, realm, e.userId(), "bypass", details, nowMs);
        return new Result(true, online, offline);
    }

    /**
     * Removes entries claimed by an earlier run, all in the caller's one transaction (a group removal
     * makes Keycloak reload the realm in the next transaction: once per run, not once per entry), and
     * the record credential of each whose claimant may have stopped before deleting it: a claim not
     * made by the task (the task deletes the record in its claim's own transaction). No event: each
     * claimant wrote its own. Returns how many entries went.
     */
    static int tidy(KeycloakSession session, RealmModel realm, List<BypassIndex.Entry> entries) {
        int removed = 0;
        for (BypassIndex.Entry e : entries) {
            GroupModel entry = session.groups().getGroupById(realm, e.groupId());
            if (entry == null) {
                continue;
            }
            if (!TwostepAdminEvents.TASK_ACTOR.equals(e.claimBy())) {
                UserModel user = session.users().getUserById(realm, e.userId());
                CredentialModel cred = user == null ? null
                        : user.credentialManager().getStoredCredentialById(e.credentialId());
                if (cred != null && BypassCredentialProvider.TYPE.equals(cred.getType())) {
                    user.credentialManager().removeStoredCredentialById(cred.getId());
                }
            }
            if (session.groups().removeGroup(realm, entry)) {
                removed++;
            }
        }
        return removed;
    }

    private static List<UserSessionModel> window(List<UserSessionModel> sessions, String granted, String until,
                                                 long nowMs) {
        return sessions.stream().filter(s -> ExpiryRules.endsWithBypass(s.getStarted(), granted, until, nowMs))
                .collect(Collectors.toList());
    }

    private static String nz(String s) {
        return s == null ? "" : s;
    }
}
