package io.twostep.keycloak;

import org.keycloak.models.KeycloakSession;

/**
 * A lost OTP device, disabled (docs/formats.md, "Disabled devices"): the OTP credential moved aside
 * so that neither the OTP form nor the condition sees it, restorable by an admin, purged when the user
 * enrolls a new device or after {@link DisabledOtp#KEEP_MS}. Not removeable by the user.
 */
public final class OtpDisabledCredentialProvider extends RecordCredentialProvider {

    public static final String TYPE = "twostep-otp-disabled";

    OtpDisabledCredentialProvider(KeycloakSession session) {
        super(session);
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    String label() {
        return "twostep disabled OTP device";
    }
}
