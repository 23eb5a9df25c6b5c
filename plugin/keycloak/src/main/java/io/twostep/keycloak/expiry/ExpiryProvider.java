package io.twostep.keycloak.expiry;

import org.keycloak.provider.Provider;

/** The expiry SPI's provider: nothing per session; the factory schedules the task. */
public interface ExpiryProvider extends Provider {
}
