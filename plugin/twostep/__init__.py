"""keycloak-twostep: two-step authentication policy, bypass and backup codes on Keycloak 26."""

__version__ = "0.1.0"
