package io.twostep.keycloak.expiry;

/** Where a run's figures go besides the heartbeat (Micrometer when Keycloak has it). */
interface ExpiryMetrics {

    void record(String realm, long durationMs, int ended, int graceEnded, int errors);

    ExpiryMetrics NONE = (realm, durationMs, ended, graceEnded, errors) -> { };
}
