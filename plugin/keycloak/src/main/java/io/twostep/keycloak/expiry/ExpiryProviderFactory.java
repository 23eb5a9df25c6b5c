package io.twostep.keycloak.expiry;

import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.jboss.logging.Logger;
import org.keycloak.Config;
import org.keycloak.common.util.Time;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.utils.PostMigrationEvent;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.provider.ProviderConfigurationBuilder;
import org.keycloak.provider.ProviderFactory;
import org.keycloak.services.scheduled.ClusterAwareScheduledTaskRunner;
import org.keycloak.timer.TimerProvider;

/**
 * Schedules the expiry task once the database is migrated (as Keycloak schedules its own
 * ClearExpiredEvents): on every node with Keycloak's {@code TimerProvider}, each run through
 * {@code ClusterAwareScheduledTaskRunner}, which lets one node of the cluster run it at a time
 * ({@code ClusterProvider.executeIfNotExecuted}).
 */
public final class ExpiryProviderFactory implements ProviderFactory<ExpiryProvider> {

    public static final String ID = "expiry";
    static final long DEFAULT_INTERVAL_S = 30;
    private static final Logger LOG = Logger.getLogger(ExpiryProviderFactory.class);

    /** The scheduled task (null until scheduled, or with the provider disabled): the grace index asks it. */
    private static volatile ExpiryTask scheduled;

    private long intervalS = DEFAULT_INTERVAL_S;
    private Pattern realms = Pattern.compile(".*");

    @Override
    public ExpiryProvider create(KeycloakSession session) {
        return () -> { };
    }

    @Override
    public void init(Config.Scope config) {
        Long interval = config.getLong("interval", DEFAULT_INTERVAL_S);
        intervalS = interval == null || interval < 1 ? DEFAULT_INTERVAL_S : interval;
        String pattern = config.get("realms", ".*");
        try {
            realms = Pattern.compile(pattern == null || pattern.isBlank() ? ".*" : pattern);
        } catch (PatternSyntaxException e) {
            // Fail safe for the realms: a typo must not switch the task off silently for all of them.
            LOG.warnf("twostep: option realms is not a regular expression (%s); serving every realm",
                    e.getDescription());
            realms = Pattern.compile(".*");
        }
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
        factory.register(event -> {
            if (event instanceof PostMigrationEvent) {
                schedule(factory);
            }
        });
    }

    private void schedule(KeycloakSessionFactory factory) {
        try (KeycloakSession session = factory.create()) {
            TimerProvider timer = session.getProvider(TimerProvider.class);
            if (timer == null) {
                LOG.warn("twostep: no TimerProvider; the bypass expiry task is not scheduled (sync ends bypasses)");
                return;
            }
            long ms = intervalS * 1000;
            ExpiryTask task = new ExpiryTask(factory, Time::currentTimeMillis, intervalS, realms,
                    ExpiryMetricsMicrometer.orNone());
            timer.schedule(new ClusterAwareScheduledTaskRunner(factory, task, ms), ms, task.getTaskName());
            scheduled = task;
            LOG.infof("twostep: bypass expiry task scheduled every %d s (realms %s)", intervalS, realms.pattern());
        }
    }

    /** Whether this node's task serves the realm (false when no task is scheduled here). */
    static boolean serves(String realmName, String policyJson) {
        ExpiryTask task = scheduled;
        return task != null && task.serves(realmName, policyJson);
    }

    @Override
    public List<ProviderConfigProperty> getConfigMetadata() {
        return ProviderConfigurationBuilder.create()
                .property().name("interval").type("int").defaultValue(DEFAULT_INTERVAL_S)
                .helpText("Seconds between two runs of the twostep bypass expiry task").add()
                .property().name("realms").type("string").defaultValue(".*")
                .helpText("Regular expression of the realm names the task serves").add()
                .build();
    }

    @Override
    public void close() {
    }

    @Override
    public String getId() {
        return ID;
    }
}
