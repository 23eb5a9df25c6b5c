package io.twostep.keycloak.expiry;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.twostep.keycloak.BypassIndex;
import io.twostep.keycloak.DisabledOtpIndex;
import io.twostep.keycloak.Groups;
import io.twostep.keycloak.HelpRequestAuthenticator;
import io.twostep.keycloak.HelpRequestLimits;
import io.twostep.keycloak.TwostepDecision;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.regex.Pattern;
import org.jboss.logging.Logger;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.KeycloakSessionTaskWithResult;
import org.keycloak.models.RealmModel;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.timer.ScheduledTask;

/**
 * One run of the expiry task over every realm under twostep (provider mode: the policy's
 * {@code record_store} is {@code credential}, its {@code expiry_task} is not {@code off}, and the name
 * matches the SPI option {@code realms}). Reads run in the runner's session; every end, tidy and
 * heartbeat runs in its own transaction, so one user's failure never undoes another's end.
 */
public final class ExpiryTask implements ScheduledTask {

    static final String POLICY_ATTRIBUTE = "twostep.policy";
    private static final Logger LOG = Logger.getLogger(ExpiryTask.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final KeycloakSessionFactory factory;
    private final LongSupplier clock;
    private final long intervalS;
    private final Pattern realms;
    private final ExpiryStatus status = new ExpiryStatus();
    private final ExpiryMetrics metrics;

    ExpiryTask(KeycloakSessionFactory factory, LongSupplier clock, long intervalS, Pattern realms,
               ExpiryMetrics metrics) {
        this.factory = factory;
        this.clock = clock;
        this.intervalS = intervalS;
        this.realms = realms;
        this.metrics = metrics;
    }

    @Override
    public String getTaskName() {
        return "TwostepExpiryTask";
    }

    @Override
    public void run(KeycloakSession session) {
        List<RealmModel> all = session.realms().getRealmsStream().toList();
        for (RealmModel realm : all) {
            try {
                if (serves(realm.getName(), realm.getAttribute(POLICY_ATTRIBUTE))) {
                    runRealm(session, realm);
                }
            } catch (RuntimeException e) {
                LOG.warnf("twostep: expiry run for realm %s failed: %s", realm.getName(), e);
            }
        }
    }

    /** Whether the task serves this realm: provider mode, not switched off, name matches. */
    boolean serves(String realmName, String policyJson) {
        if (policyJson == null || !realms.matcher(realmName).matches()) {
            return false;
        }
        try {
            JsonNode policy = JSON.readTree(policyJson);
            return policy != null && policy.isObject()
                    && "credential".equals(policy.path("record_store").asText())
                    && !"off".equals(policy.path("expiry_task").asText());
        } catch (Exception e) {
            return false; // unreadable: not ours to act on (sign-in still fails closed)
        }
    }

    private void runRealm(KeycloakSession session, RealmModel realm) {
        session.getContext().setRealm(realm);
        long start = clock.getAsLong();
        String realmId = realm.getId();
        int ended = 0;
        int errors = 0;
        GroupModel root = BypassIndex.root(session, realm);
        if (root != null) {
            for (GroupModel bucket : Groups.children(root)) {
                String name = bucket.getName();
                if (!ExpiryRules.bucketBegun(name, start)) {
                    continue;
                }
                List<BypassIndex.Entry> entries = BypassIndex.entries(session, realm, bucket.getId());
                if (entries.isEmpty()) {
                    if (ExpiryRules.bucketOver(name, start)) {
                        errors += removeIfEmpty(realmId, bucket.getId());
                    }
                    continue;
                }
                ExpiryRules.Plan plan = ExpiryRules.plan(entries, clock.getAsLong(), start);
                for (BypassIndex.Entry e : plan.due()) {
                    int r = inTransaction(realmId, s -> {
                        BypassEnder.Result result = BypassEnder.end(s, s.realms().getRealm(realmId), e.groupId(),
                                clock.getAsLong());
                        if (result.ended()) {
                            LOG.infof("twostep: bypass of user %s ended in realm %s (%d sessions, %d offline)",
                                    e.userId(), realm.getName(), result.sessions(), result.offlineSessions());
                        }
                        return result.ended() ? 1 : 0;
                    });
                    if (r < 0) {
                        errors++;
                    } else {
                        ended += r;
                    }
                }
                if (!plan.tidy().isEmpty() && inTransaction(realmId,
                        s -> BypassEnder.tidy(s, s.realms().getRealm(realmId), plan.tidy())) < 0) {
                    // One entry failed the batch (removed meanwhile by sync, say): each on its own.
                    for (BypassIndex.Entry e : plan.tidy()) {
                        if (inTransaction(realmId, s -> BypassEnder.tidy(s, s.realms().getRealm(realmId),
                                List.of(e))) < 0) {
                            errors++;
                        }
                    }
                }
            }
        }
        int[] grace = graceRun(session, realm, start);
        errors += grace[1];
        errors += disabledRun(session, realm, start);
        errors += helpRun(session, realm, start);
        long now = clock.getAsLong();
        long duration = Math.max(0, now - start);
        metrics.record(realm.getName(), duration, ended, grace[0], errors);
        if (status.add(realmId, now, ended, grace[0], errors)) {
            String beat = status.take(realmId, now, duration, intervalS);
            inTransaction(realmId, s -> {
                RealmModel r = s.realms().getRealm(realmId);
                GroupModel g = BypassIndex.root(s, r);
                if (g == null) {
                    g = s.groups().createGroup(r, BypassIndex.ROOT);
                }
                g.setSingleAttribute(ExpiryStatus.ATTRIBUTE, beat);
                return 0;
            });
        }
    }

    /**
     * The grace index (docs/formats.md): only buckets (users' creation days) whose users' grace can be
     * over are opened; each entry is decided again and, when grace is over with still nothing set up,
     * its user's sessions end. Returns {ended, errors}.
     */
    private int[] graceRun(KeycloakSession session, RealmModel realm, long start) {
        int ended = 0;
        int errors = 0;
        GroupModel root = Groups.top(session, realm, GraceIndex.ROOT);
        if (root == null) {
            return new int[] {0, 0};
        }
        String realmId = realm.getId();
        TwostepDecision.Policy policy = TwostepDecision.parsePolicy(realm.getAttribute(POLICY_ATTRIBUTE));
        for (GroupModel bucket : Groups.children(root)) {
            if (!GraceRules.bucketMayBeDue(bucket.getName(), policy, start)) {
                continue;
            }
            List<GroupModel> entries = Groups.children(bucket);
            if (entries.isEmpty()) {
                errors += removeIfEmpty(realmId, bucket.getId());
                continue;
            }
            for (GroupModel entry : entries) {
                int r = inTransaction(realmId, s -> GraceEnder.run(s, s.realms().getRealm(realmId), entry.getId(),
                        clock.getAsLong()));
                if (r < 0) {
                    errors++;
                } else {
                    ended += r;
                }
            }
        }
        return new int[] {ended, errors};
    }

    /**
     * The disabled-device index (docs/formats.md, "Disabled devices"): its entries read in one statement
     * ({@link DisabledOtpIndex#entries}); each entry whose user enrolled a new device, or whose day is
     * over, purges its user's due devices in its own transaction; then the days that are over and empty
     * go. Returns errors.
     */
    private int disabledRun(KeycloakSession session, RealmModel realm, long start) {
        GroupModel root = Groups.top(session, realm, DisabledOtpIndex.ROOT);
        if (root == null) {
            return 0;
        }
        int errors = 0;
        String realmId = realm.getId();
        for (DisabledOtpIndex.Entry entry : DisabledOtpIndex.entries(session, realm, root.getId())) {
            if (DisabledOtpIndex.entryDue(entry.day(), start, entry.userHasOtp())
                    && inTransaction(realmId, s -> DisabledOtpIndex.sweep(s, s.realms().getRealm(realmId),
                            entry.groupId(), clock.getAsLong())) < 0) {
                errors++;
            }
        }
        for (GroupModel bucket : Groups.children(root)) {
            if (DisabledOtpIndex.bucketOver(bucket.getName(), start)) {
                errors += removeIfEmpty(realmId, bucket.getId());
            }
        }
        return errors;
    }

    /**
     * Help requests older than the realm's expiry ({@code help_expiry_days}, 7 by default): read through
     * the index group in one statement ({@link HelpEnder#open}); each expired one closed in its own
     * transaction with one admin event. Returns errors.
     */
    private int helpRun(KeycloakSession session, RealmModel realm, long start) {
        GroupModel index = Groups.top(session, realm, HelpRequestAuthenticator.GROUP);
        if (index == null) {
            return 0;
        }
        int days = HelpRequestLimits.fromPolicy(realm.getAttribute(POLICY_ATTRIBUTE)).expiryDays();
        int errors = 0;
        String realmId = realm.getId();
        for (HelpEnder.Open open : HelpEnder.open(session, realm, index.getId())) {
            if (!HelpRequestLimits.expiredAt(start, open.askedAtRaw(), days)) {
                continue;
            }
            int r = inTransaction(realmId, s -> HelpEnder.end(s, s.realms().getRealm(realmId), open.userId(),
                    open.askedAtRaw(), clock.getAsLong()));
            if (r < 0) {
                errors++;
            } else if (r > 0) {
                LOG.infof("twostep: expired help request of user %s closed in realm %s", open.userId(),
                        realm.getName());
            }
        }
        return errors;
    }

    /** Removes a bucket left empty, in its own transaction; 1 when that failed. */
    private int removeIfEmpty(String realmId, String bucketId) {
        return inTransaction(realmId, s -> {
            RealmModel r = s.realms().getRealm(realmId);
            GroupModel b = s.groups().getGroupById(r, bucketId);
            if (b != null && b.getSubGroupsStream().findAny().isEmpty()) {
                s.groups().removeGroup(r, b);
            }
            return 0;
        }) < 0 ? 1 : 0;
    }

    /** Runs one unit in its own transaction; -1 when it failed (rolled back whole). */
    private int inTransaction(String realmId, KeycloakSessionTaskWithResult<Integer> task) {
        try {
            Integer r = KeycloakModelUtils.runJobInTransactionWithResult(factory, s -> {
                // Keycloak's stores ask the session's realm (else "Session not bound to a realm").
                s.getContext().setRealm(s.realms().getRealm(realmId));
                return task.run(s);
            });
            return r == null ? 0 : r;
        } catch (RuntimeException e) {
            // Most often another run (a sync pass, another node) claimed the same entry first and the
            // database refused the second claim; the next run sees the claim and does nothing.
            LOG.infof("twostep: expiry step rolled back: %s", e.toString());
            return -1;
        }
    }
}
