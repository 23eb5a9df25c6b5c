"""The Keycloak themes (twostep/login/...), shipped as package data: `twostep.theme_jar` builds the
theme JAR from here, in a checkout and when installed from a wheel."""
