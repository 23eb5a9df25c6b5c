package io.twostep.keycloak;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.jboss.logging.Logger;
import org.keycloak.authentication.AuthenticationFlowContext;
import org.keycloak.credential.CredentialModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * Disabled OTP devices (docs/formats.md, "Disabled devices"): a lost device is moved aside into a
 * {@code twostep-otp-disabled} credential (its secret and data kept, who and when added) in the same
 * transaction that deletes the live {@code otp} credential, so nothing at sign-in sees it; an admin
 * restores it; it is purged when the user has an OTP device again (a new enrollment) or after 30 days.
 */
public final class DisabledOtp {

    public static final String OTP = "otp";
    public static final long KEEP_MS = 30L * 24 * 3600 * 1000;
    /** Who purges at sign-in, in the admin event. */
    public static final String SIGN_IN_ACTOR = "twostep sign-in";
    private static final Logger LOG = Logger.getLogger(DisabledOtp.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private DisabledOtp() {
    }

    /** Pure: a disabled device goes for good when the user has a live device again, after 30 days, or when unreadable. */
    public static boolean purgeDue(long nowMs, Map<String, String> record, boolean userHasOtp) {
        Long at = record == null ? null : TwostepDecision.parseTime(record.get("disabled_at"));
        return userHasOtp || at == null || record.get("otp_credential_data") == null || nowMs >= at + KEEP_MS;
    }

    /** Pure: the record of a disabled device (credentialData, all strings). */
    public static Map<String, String> record(String label, Long created, String otpCredentialData, String by,
                                             long nowMs) {
        Map<String, String> r = new TreeMap<>();
        r.put("disabled_at", TwostepDecision.formatTime(nowMs));
        r.put("purge_after", TwostepDecision.formatTime(nowMs + KEEP_MS));
        r.put("by", by == null || by.isBlank() ? "?" : by.strip());
        r.put("label", label == null ? "" : label);
        r.put("created", created == null ? "" : String.valueOf(created));
        r.put("otp_credential_data", otpCredentialData == null ? "" : otpCredentialData);
        return r;
    }

    /** Moves every live OTP device of the user aside; returns how many. */
    public static int disable(UserModel user, String by, long nowMs) {
        List<CredentialModel> live = user.credentialManager().getStoredCredentialsByTypeStream(OTP).toList();
        for (CredentialModel otp : live) {
            CredentialModel aside = new CredentialModel();
            aside.setType(OtpDisabledCredentialProvider.TYPE);
            aside.setUserLabel("twostep disabled OTP device");
            aside.setSecretData(otp.getSecretData());
            aside.setCredentialData(json(record(otp.getUserLabel(), otp.getCreatedDate(), otp.getCredentialData(), by,
                    nowMs)));
            aside.setCreatedDate(nowMs);
            user.credentialManager().createStoredCredential(aside);
            user.credentialManager().removeStoredCredentialById(otp.getId());
        }
        return live.size();
    }

    /** {@link #disable} and the user filed in the index for the 30-day sweep (docs/formats.md). */
    public static int disable(KeycloakSession session, RealmModel realm, UserModel user, String by, long nowMs) {
        int n = disable(user, by, nowMs);
        if (n > 0) {
            DisabledOtpIndex.note(session, realm, user.getId(), nowMs + KEEP_MS);
        }
        return n;
    }

    /** The user's disabled devices. */
    public static List<CredentialModel> stored(UserModel user) {
        return user.credentialManager().getStoredCredentialsByTypeStream(OtpDisabledCredentialProvider.TYPE).toList();
    }

    /**
     * Brings the disabled devices back as they were (secret, data, label, creation time); a damaged one
     * is dropped, not restored. Returns how many came back.
     */
    public static int restore(UserModel user) {
        int back = 0;
        for (CredentialModel aside : stored(user)) {
            Map<String, String> r = TwostepCondition.parseRecord(aside.getCredentialData());
            String data = r == null ? null : r.get("otp_credential_data");
            if (data != null && !data.isEmpty() && aside.getSecretData() != null) {
                CredentialModel otp = new CredentialModel();
                otp.setType(OTP);
                otp.setSecretData(aside.getSecretData());
                otp.setCredentialData(data);
                otp.setUserLabel(r.get("label").isEmpty() ? null : r.get("label"));
                otp.setCreatedDate(parseLong(r.get("created"), aside.getCreatedDate()));
                user.credentialManager().createStoredCredential(otp);
                back++;
            }
            user.credentialManager().removeStoredCredentialById(aside.getId());
        }
        return back;
    }

    /** How many of the user's disabled devices a restore would bring back now (none once one is due). */
    public static int restorable(UserModel user, long nowMs) {
        boolean hasOtp = user.credentialManager().getStoredCredentialsByTypeStream(OTP).findAny().isPresent();
        return (int) stored(user).stream()
                .filter(c -> !purgeDue(nowMs, TwostepCondition.parseRecord(c.getCredentialData()), hasOtp)).count();
    }

    /** Deletes the disabled devices whose time is over (or all, once the user has a device); returns how many. */
    public static int purge(UserModel user, long nowMs) {
        boolean hasOtp = user.credentialManager().getStoredCredentialsByTypeStream(OTP).findAny().isPresent();
        int gone = 0;
        for (CredentialModel aside : stored(user)) {
            // Counted only when this transaction deleted it (Keycloak locks the row to delete it): a
            // concurrent purge (sign-in, task, restore) that deleted it first records it, not this one.
            if (purgeDue(nowMs, TwostepCondition.parseRecord(aside.getCredentialData()), hasOtp)
                    && user.credentialManager().removeStoredCredentialById(aside.getId())) {
                gone++;
            }
        }
        return gone;
    }

    /** At sign-in, in the login's transaction: purges what is due, with one admin event. Never throws. */
    static void purgeAtSignIn(AuthenticationFlowContext context, long nowMs) {
        try {
            UserModel user = context.getUser();
            if (user == null || stored(user).isEmpty()) {
                return;
            }
            int gone = purge(user, nowMs);
            if (gone > 0) {
                KeycloakSession session = context.getSession();
                RealmModel realm = context.getRealm();
                Map<String, String> details = new TreeMap<>();
                details.put("action", "otp.purge");
                details.put("user_id", user.getId());
                details.put("username", user.getUsername());
                details.put("devices_purged", String.valueOf(gone));
                TwostepAdminEvents.writeAs(session, realm, user.getId(), "otp.purge", details, nowMs, SIGN_IN_ACTOR);
            }
        } catch (RuntimeException e) {
            LOG.debugf("twostep: disabled devices not purged at sign-in (%s)", e.getClass().getSimpleName());
        }
    }

    private static long parseLong(String text, Long fallback) {
        try {
            return Long.parseLong(text);
        } catch (RuntimeException e) {
            return fallback == null ? 0L : fallback;
        }
    }

    private static String json(Object value) {
        try {
            return JSON.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
