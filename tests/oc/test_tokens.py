"""The refresh-token store: atomic 0600 writes, and which token a run starts from."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.oc.tokens import TokenStore, fingerprint


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
    assert store.initial_refresh_token("boot") == "boot"
    store.save("rotated", fingerprint("boot"))
    assert store.initial_refresh_token("boot") == "rotated"
    assert store.initial_refresh_token("") == "rotated"
    assert store.initial_refresh_token("new-grant") == "new-grant"


def test_an_unreadable_store_is_ignored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oc-token.json")
    store.path.write_text("{not json")
    assert store.load() is None
    assert store.initial_refresh_token("boot") == "boot"
