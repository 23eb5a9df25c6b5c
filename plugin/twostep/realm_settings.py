"""The realm's own sign-in settings as setup sets them: Keycloak's OTP policy (`OtpPolicy`, from the
`setup --otp-*` flags) and its brute-force protection (`BruteForce`), each as the realm fields it writes.
The twostep policy record itself: `policy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput


@dataclass(frozen=True)
class OtpPolicy:
    type: str = "totp"
    algorithm: str = "HmacSHA1"
    digits: int = 6
    period: int = 30
    look_around: int = 1
    reusable: bool = False

    def realm_fields(self) -> dict[str, Any]:
        return {
            "otpPolicyType": self.type,
            "otpPolicyAlgorithm": self.algorithm,
            "otpPolicyDigits": self.digits,
            "otpPolicyPeriod": self.period,
            "otpPolicyLookAheadWindow": self.look_around,
            "otpPolicyCodeReusable": self.reusable,
        }

    def validate(self) -> None:
        if self.type not in ("totp", "hotp"):
            raise InvalidInput("--otp-type must be totp or hotp")
        if self.algorithm not in ("HmacSHA1", "HmacSHA256", "HmacSHA512"):
            raise InvalidInput("--otp-algorithm must be HmacSHA1, HmacSHA256 or HmacSHA512")
        if self.digits not in (6, 8):
            raise InvalidInput("--otp-digits must be 6 or 8")
        if not 15 <= self.period <= 120:
            raise InvalidInput("--otp-period must be between 15 and 120 seconds")
        if not 0 <= self.look_around <= 3:
            raise InvalidInput("--otp-look-around must be between 0 and 3")


@dataclass(frozen=True)
class BruteForce:
    # Ten failures lock for a minute, doubling up to fifteen minutes: a 6-digit code or a
    # backup code cannot be walked, and a person who mistypes is not locked out for long.
    failure_factor: int = 10
    wait_increment_s: int = 60
    max_wait_s: int = 900
    max_delta_s: int = 12 * 3600
    quick_login_ms: int = 1000
    min_quick_wait_s: int = 60

    def realm_fields(self) -> dict[str, Any]:
        return {
            "bruteForceProtected": True,
            "permanentLockout": False,
            "failureFactor": self.failure_factor,
            "waitIncrementSeconds": self.wait_increment_s,
            "maxFailureWaitSeconds": self.max_wait_s,
            "maxDeltaTimeSeconds": self.max_delta_s,
            "quickLoginCheckMilliSeconds": self.quick_login_ms,
            "minimumQuickLoginWaitSeconds": self.min_quick_wait_s,
        }
