"""Organisations, users (inspector | supervisor | admin), password hashing, server-side sessions, CSRF."""

from inference_service.accounts.service import (
    ROLES,
    SESSION_DAYS,
    Accounts,
    AccountsError,
    LoginThrottled,
    Session,
    User,
)

__all__ = ["ROLES", "SESSION_DAYS", "Accounts", "AccountsError", "LoginThrottled", "Session", "User"]
