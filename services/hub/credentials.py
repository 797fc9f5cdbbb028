"""NKey credentials of the hub's users: one seed file per (account, user), mode 0600.

A seed is the user's private key; the server's configuration only ever holds the public key. The
secretariat keeps every seed under the hub home and hands each state the seed of its node user,
and nothing else, in its onboarding bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nkeys

from services.core.files import write_secret

#: The state account's users: the node's least-privilege application user, and the secretariat's
#: provisioning user that creates the account's streams and consumers.
NODE_USER = "node"
PROVISION_USER = "provision"
#: A state's leaf node's user (docs/operations.md, "A state's leaf"): only for a state on a leaf.
LEAF_USER = "leaf"


@dataclass(frozen=True)
class UserKey:
    """One NATS user's NKey: where its seed lives and its public key."""

    account: str
    user: str
    seed_path: Path
    public_key: str


def seed_path(nkeys_dir: Path, account: str, user: str) -> Path:
    return nkeys_dir / account / f"{user}.nk"


def ensure_user(nkeys_dir: Path, account: str, user: str) -> UserKey:
    """Return the user's key, generating its seed file (0600) on first use."""
    path = seed_path(nkeys_dir, account, user)
    if not path.exists():
        seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        write_secret(path, seed + b"\n")
    return load_user(nkeys_dir, account, user)


def load_user(nkeys_dir: Path, account: str, user: str) -> UserKey:
    path = seed_path(nkeys_dir, account, user)
    keypair = nkeys.from_seed(bytearray(path.read_bytes().strip()))
    try:
        public = keypair.public_key.decode()
    finally:
        keypair.wipe()
    return UserKey(account, user, path, public)
