"""The refresh-token store: atomic 0600 writes, which token a refresh uses, the lock file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.oc.tokens import StoredToken, StoreLocked, TokenStore, fingerprint, newest


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


A = StoredToken("a-2", fingerprint("a-1"))  # grant a, rotated once
B = StoredToken("b-1", fingerprint("b-1"))  # grant b, as a login stores it


@pytest.mark.parametrize(
    ("stored", "bootstrap", "held", "expected"),
    [
        # At start: the store, unless another bootstrap token is configured.
        (None, "a-1", None, StoredToken("a-1", fingerprint("a-1"))),
        (A, "a-1", None, A),
        (A, "", None, A),
        (B, "", None, B),
        (B, "a-1", None, StoredToken("a-1", fingerprint("a-1"))),
        (B, "b-1", None, B),
        # Running: another process's rotation of the same grant is taken over.
        (A, "a-1", StoredToken("a-1", fingerprint("a-1")), A),
        (None, "a-1", A, A),
        (A, "a-1", A, A),
        # A new login in the store replaces the grant only when none is configured.
        (B, "", A, B),
        (B, "a-1", A, A),
    ],
)
def test_which_refresh_token_a_refresh_uses(
    stored: StoredToken | None, bootstrap: str, held: StoredToken | None, expected: StoredToken
) -> None:
    assert newest(stored, bootstrap, held) == expected


def test_a_login_stores_its_token_as_its_own_seed(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oc-token.json")
    store.save_grant("b-1")
    assert store.load() == B
    assert store.starting_point("b-1") == B  # the same token configured: the store is kept
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


async def test_the_lock_lets_one_holder_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "oc-token.json"
    first, second = TokenStore(path), TokenStore(path)  # as two processes would open it
    async with first.locked():
        with pytest.raises(StoreLocked):
            async with second.locked(timeout_s=0.2):
                pass
    async with second.locked(timeout_s=0.2):
        assert first.lock_path.exists()
        assert stat.S_IMODE(first.lock_path.stat().st_mode) == 0o600


async def test_a_lock_file_that_cannot_be_opened_does_not_stop_a_refresh(
    tmp_path: Path,
) -> None:
    # As in a read-only directory (which root, running these tests, would still write).
    store = TokenStore(tmp_path / "oc-token.json")
    store.save("a-2", fingerprint("a-1"))
    store.lock_path.mkdir()
    async with store.locked(timeout_s=0.2):
        assert store.load() == A
