"""The two roles of the co-evolution, named once: every floor above checks a role name here."""

from __future__ import annotations

ROLES = ("challenger", "solver")


def check_role(role: str) -> str:
    """``role`` itself when it names a role; else a ``ValueError`` listing the roles."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    return role
