"""Command and query handlers of the profiles service."""

from contactcenter.profiles.application.service import (
    Actor,
    IdentityInput,
    ProfilesApplication,
    ProfileView,
    Resolved,
)

__all__ = ["Actor", "IdentityInput", "ProfileView", "ProfilesApplication", "Resolved"]
