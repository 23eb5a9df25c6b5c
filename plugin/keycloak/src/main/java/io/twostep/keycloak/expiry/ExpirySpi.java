package io.twostep.keycloak.expiry;

import org.keycloak.provider.Provider;
import org.keycloak.provider.ProviderFactory;
import org.keycloak.provider.Spi;

/**
 * SPI {@code twostep}, provider {@code expiry}: its options are
 * {@code --spi-twostep--expiry--interval=30} (seconds), {@code --spi-twostep--expiry--realms=REGEX}
 * and {@code --spi-twostep--expiry--enabled=false} (env {@code KC_SPI_TWOSTEP__EXPIRY__INTERVAL}...).
 */
public final class ExpirySpi implements Spi {

    @Override
    public boolean isInternal() {
        return false;
    }

    @Override
    public String getName() {
        return "twostep";
    }

    @Override
    public Class<? extends Provider> getProviderClass() {
        return ExpiryProvider.class;
    }

    @Override
    @SuppressWarnings("rawtypes")
    public Class<? extends ProviderFactory> getProviderFactoryClass() {
        return ExpiryProviderFactory.class;
    }
}
