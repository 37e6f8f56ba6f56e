"""The bearer tokens of the scoped cases (test/contract/cases/README.md,
"Scoped tokens"): what a case's "tokens" map may say, the token string each
scope gets, and the AUTH_TOKENS_FILE lines the server starts with.
test/contract/case-tokens.ts is the same in TypeScript; a change here is a
change there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ADMIN_TOKEN", "check_case_tokens", "token_file_lines", "token_of"]

#: The token of every step without "as": an unscoped (admin) token, a bare line.
ADMIN_TOKEN = "contract-admin-unscoped"

_ROLES = ("read", "write", "admin")

#: A user id a token-file line can hold: 1 to 64 code points, no space or comma.
_USER_ID = re.compile(r"[^\s,]{1,64}")


def check_case_tokens(tokens: Any, where: str) -> None:
    """Refuses a "tokens" map the server would refuse (or the runner misread),
    naming ``where`` and the token: read and write are bound to at least one
    user, admin to none, and a scope has no other key."""
    if not isinstance(tokens, dict) or not tokens:
        raise ValueError(f'{where}: "tokens" must map token names to {{"role", "users"}}')
    for name, scope in tokens.items():
        at = f'{where}: token "{name}"'
        if not isinstance(scope, dict) or scope.get("role") not in _ROLES:
            raise ValueError(f'{at}: needs "role": "read", "write" or "admin"')
        extra = [key for key in scope if key not in ("role", "users")]
        if extra:
            raise ValueError(f'{at}: unknown key "{extra[0]}" (role, users)')
        users = scope.get("users")
        if scope["role"] == "admin":
            if "users" in scope:
                raise ValueError(f"{at}: role admin is never bound to users")
            continue
        if not isinstance(users, list) or not users:
            raise ValueError(f'{at}: role {scope["role"]} needs "users", a list of user ids')
        if not all(isinstance(user, str) and _USER_ID.fullmatch(user) for user in users):
            raise ValueError(f"{at}: a user id is 1 to 64 characters without spaces or commas")


def token_of(scope: Mapping[str, Any]) -> str:
    """The token string of a scope, the same in both languages: one string per
    scope, so every scope of every case fits in one tokens file."""
    if scope["role"] == "admin":
        return ADMIN_TOKEN
    users = ",".join(scope.get("users", [])).encode("utf-8").hex()
    return f"contract-{scope['role']}-{users}"


def token_file_lines(scopes: Iterable[Mapping[str, Any]]) -> list[str]:
    """AUTH_TOKENS_FILE lines for these scopes and the admin token, each scope once."""
    lines = [ADMIN_TOKEN]
    for scope in scopes:
        if scope["role"] != "admin":
            line = f"{token_of(scope)} role={scope['role']} users={','.join(scope['users'])}"
            if line not in lines:
                lines.append(line)
    return lines
