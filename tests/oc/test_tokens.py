"""The refresh-token store: atomic 0600 writes, and which token a run starts from."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.oc.tokens import StoredToken, TokenStore, fingerprint


def test_saved_token_is_private_and_replaces_the_old_one(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "state" / "oc-token.json")
    store.save("rt-1", fingerprint("boot"))
    store.save("rt-2", fingerprint("boot"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    loaded = store.load()
    assert loaded is not None
    assert loaded.refresh_token == "rt-2"
    assert [p.name for p in store.path.parent.iterdir()] == ["oc-token.json"]  # no temp left


def test_stored_token_wins_only_while_it_descends_from_the_configured_one(
    tmp_path: Path,
) -> None:
    store = TokenStore(tmp_path / "oc-token.json")
    assert store.starting_point("boot") == StoredToken("boot", fingerprint("boot"))
    store.save("rotated", fingerprint("boot"))
    assert store.starting_point("boot") == StoredToken("rotated", fingerprint("boot"))
    assert store.starting_point("") == StoredToken("rotated", fingerprint("boot"))
    assert store.starting_point("new") == StoredToken("new", fingerprint("new"))


def test_an_unreadable_store_is_ignored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oc-token.json")
    store.path.write_text("{not json")
    assert store.load() is None
    assert store.starting_point("boot").refresh_token == "boot"
