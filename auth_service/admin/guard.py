"""Who may use the admin routes: a person (not a client) whose token holds the `admin` role
and, when that person has a second factor, shows it in `amr`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.di import NamedDependency

from auth_service.tokens.bearer import AccessClaims
from kit.problems import ProblemError

ADMIN = "admin"
# RFC 8176 methods that are a second factor (or a multi-factor sign-in as a whole).
SECOND_FACTORS = frozenset({"mfa", "otp", "hwk", "swk", "sms", "fido"})

FactorCheck = Callable[[str], Awaitable[bool]]


async def no_factors(_user_id: str) -> bool:
    """Until second factors exist (issue 22), nobody has one."""
    return False


async def admin_claims(
    claims: NamedDependency[AccessClaims], has_second_factor: NamedDependency[FactorCheck]
) -> AccessClaims:
    roles = claims.claims.get("roles")
    if not isinstance(roles, list) or ADMIN not in roles:
        raise ProblemError(403, "forbidden", "this route is for administrators")
    amr = claims.claims.get("amr")
    shown = isinstance(amr, list) and bool(SECOND_FACTORS & set(map(str, amr)))
    if not shown and await has_second_factor(claims.sub):
        raise ProblemError(
            403, "forbidden", "sign in with your second factor to use administration"
        )
    return claims
