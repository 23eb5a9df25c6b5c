package io.twostep.keycloak.expiry;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.jboss.logging.Logger;

/**
 * The task's figures as Micrometer meters in Keycloak's registry (Micrometer's global registry,
 * which Quarkus fills when {@code --metrics-enabled=true}; served on the management port at
 * {@code /metrics}). Without metrics the registry has no backend and the meters cost nothing.
 * Meters: {@code twostep_expiry_run_seconds} (timer), {@code twostep_expiry_ended_total}
 * ({@code kind} bypass | grace), {@code twostep_expiry_errors_total},
 * {@code twostep_expiry_last_run_timestamp_seconds}; each tagged with {@code realm}.
 */
final class ExpiryMetricsMicrometer implements ExpiryMetrics {

    private static final Logger LOG = Logger.getLogger(ExpiryMetricsMicrometer.class);
    private final MeterRegistry registry;
    private final Map<String, AtomicLong> lastRun = new ConcurrentHashMap<>();

    private ExpiryMetricsMicrometer(MeterRegistry registry) {
        this.registry = registry;
    }

    /** Micrometer when Keycloak has it on its class path, else nothing. */
    static ExpiryMetrics orNone() {
        try {
            return new ExpiryMetricsMicrometer(Metrics.globalRegistry);
        } catch (LinkageError e) {
            LOG.debug("twostep: no Micrometer; expiry task metrics off");
            return NONE;
        }
    }

    @Override
    public void record(String realm, long durationMs, int ended, int graceEnded, int errors) {
        try {
            Timer.builder("twostep_expiry_run").description("Runs of the twostep bypass expiry task")
                    .tag("realm", realm).register(registry).record(durationMs, TimeUnit.MILLISECONDS);
            counter("twostep_expiry_ended", realm, "bypass").increment(ended);
            counter("twostep_expiry_ended", realm, "grace").increment(graceEnded);
            Counter.builder("twostep_expiry_errors").tag("realm", realm).register(registry).increment(errors);
            AtomicLong last = lastRun.computeIfAbsent(realm, r -> {
                AtomicLong value = new AtomicLong();
                Gauge.builder("twostep_expiry_last_run_timestamp_seconds", value, AtomicLong::get)
                        .tag("realm", r).register(registry);
                return value;
            });
            last.set(System.currentTimeMillis() / 1000);
        } catch (RuntimeException | LinkageError e) {
            LOG.debugf("twostep: expiry metrics not recorded: %s", e.toString());
        }
    }

    private Counter counter(String name, String realm, String kind) {
        return Counter.builder(name).description("Ends made by the twostep expiry task").tag("realm", realm)
                .tag("kind", kind).register(registry);
    }
}
