package io.twostep.keycloak;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.jboss.logging.Logger;
import org.keycloak.email.EmailTemplateProvider;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;

/**
 * The e-mail to the owner of an account in whose name a help request was just filed ("someone with
 * your password asked for access"), sent with Keycloak's {@code EmailTemplateProvider}: the realm's
 * e-mail theme and SMTP settings, the user's locale; the template {@code twostep-help-filed.ftl}
 * (html/ and text/) and its texts come from the JAR's theme-resources, which Keycloak merges into
 * every theme. It never fails the filing: every problem is logged (user id only) and swallowed.
 */
final class HelpRequestMail {

    static final String TEMPLATE = "twostep-help-filed.ftl";
    static final String SUBJECT = "twostepHelpFiledSubject";
    private static final Logger LOG = Logger.getLogger(HelpRequestMail.class);

    private HelpRequestMail() {
    }

    /** "sent", "no address", "no smtp" or "failed". */
    static String send(KeycloakSession session, RealmModel realm, UserModel user, long askedAt, String address) {
        try {
            String to = user.getEmail();
            if (to == null || to.isBlank()) {
                LOG.debugf("twostep: help request of user %s: no e-mail address, owner not told", user.getId());
                return "no address";
            }
            Map<String, String> smtp = realm.getSmtpConfig();
            if (smtp == null || smtp.get("host") == null || smtp.get("host").isBlank()) {
                LOG.warnf("twostep: help request of user %s: realm %s has no SMTP server, owner not told",
                        user.getId(), realm.getName());
                return "no smtp";
            }
            Locale locale = session.getContext().resolveLocale(user);
            Map<String, Object> attributes = new HashMap<>();
            attributes.put("twostepAskedAt", HelpRequestRules.localTime(askedAt, locale));
            attributes.put("twostepAddress", address == null || address.isBlank() ? "?" : address);
            String realmName = realm.getDisplayName() == null || realm.getDisplayName().isBlank()
                    ? realm.getName() : realm.getDisplayName();
            EmailTemplateProvider mail = session.getProvider(EmailTemplateProvider.class);
            mail.setRealm(realm).setUser(user).send(SUBJECT, List.of(realmName), TEMPLATE, attributes);
            LOG.infof("twostep: help request of user %s: owner e-mailed", user.getId());
            return "sent";
        } catch (Exception e) {
            // The exception's message may carry the address or server details: its class only.
            LOG.warnf("twostep: help request of user %s: e-mail to the owner failed (%s); the request stands",
                    user.getId(), e.getClass().getSimpleName());
            return "failed";
        }
    }
}
