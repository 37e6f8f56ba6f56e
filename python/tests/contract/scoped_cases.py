"""The server of the scoped-token cases (test/contract/cases/scoped-*.json):
one per test class, whose AUTH_TOKENS_FILE holds the token of every scope of
every case, written before it starts. ``self.store`` calls with the unscoped
admin token; a step's "as" calls through a store with that token's.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tests.support.backends import TrackingStore

from .case_runner import CaseStores, ContractCase, load_cases
from .case_tokens import ADMIN_TOKEN, token_file_lines, token_of

if TYPE_CHECKING:
    from tests.support.backends import ServerTestCase as _Base
else:
    # A plain mixin at run time, so unittest never collects it on its own.
    _Base = object


def _every_scope() -> list[dict[str, Any]]:
    return [scope for case in load_cases() for scope in (case.tokens or {}).values()]


class ScopedServer(_Base):
    """Before a ServerTestCase in the bases: its server requires the tokens."""

    token: ClassVar[str | None] = ADMIN_TOKEN

    @classmethod
    def server_env(cls) -> dict[str, str]:
        directory = Path(tempfile.mkdtemp(prefix="runstore-contract-tokens-"))
        cls.addClassCleanup(shutil.rmtree, directory, ignore_errors=True)
        tokens = directory / "tokens"
        tokens.write_text("\n".join(token_file_lines(_every_scope())) + "\n", encoding="utf-8")
        return {**super().server_env(), "AUTH_TOKENS_FILE": str(tokens)}

    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.token_stores: dict[str, TrackingStore] = {}

    async def asyncTearDown(self) -> None:
        # The runs written through any token are removed with the admin's.
        for store in self.token_stores.values():
            await store.close()
            self.store.put_ids |= store.put_ids
        await super().asyncTearDown()

    def case_stores(self, case: ContractCase) -> CaseStores:
        """The store of each step of ``case``: with its "as" token, or the admin's."""
        tokens = case.tokens or {}

        def store(name: str | None) -> TrackingStore:
            if name is None:
                return self.store
            token = token_of(tokens[name])
            if token not in self.token_stores:
                target = self.server.target
                self.token_stores[token] = TrackingStore(target, token=token, timeout=30)
            return self.token_stores[token]

        return store
