"""The node store's schema, as versioned migrations.

Each migration is one SQL script run whole (``executescript``, never split on ``;``, so a trigger
or a literal may hold one) inside its own ``BEGIN IMMEDIATE ... COMMIT`` together with the
``PRAGMA user_version`` it reaches: a migration that fails leaves the store at the version before
it, nothing half done. ``executescript`` commits any open transaction first, so migrations run
when the store is opened, outside every transaction.

To change the schema, add the next version at the end of ``MIGRATIONS``; never edit one that has
shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE messages (
        msg_id           TEXT PRIMARY KEY,
        direction        TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        kind             TEXT NOT NULL,
        sender           TEXT NOT NULL,
        recipients       TEXT NOT NULL,   -- JSON array of party codes
        handling         TEXT NOT NULL,
        confidential     INTEGER NOT NULL,
        case_id          TEXT,
        in_reply_to      TEXT,
        created_at       TEXT NOT NULL,
        stored_at        TEXT NOT NULL,   -- inbound: the broker's storage time
        envelope         BLOB NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        local_copy       BLOB,            -- outbound: the same body sealed to this node
        stream_seq       INTEGER,         -- inbound: sequence in this node's inbox stream
        first_read_at    TEXT
    );
    CREATE INDEX messages_case ON messages (case_id, created_at);
    CREATE INDEX messages_listing ON messages (direction, kind, created_at);

    CREATE TABLE outbox (
        msg_id           TEXT NOT NULL REFERENCES messages (msg_id),
        recipient        TEXT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,   -- monotonic-free: Unix seconds
        last_error       TEXT,
        sent_at          TEXT,
        stream_seq       INTEGER,         -- the PubAck's sequence in the recipient's inbox
        PRIMARY KEY (msg_id, recipient)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

    CREATE TABLE deliveries (            -- what each recipient answered about our messages
        msg_id           TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('delivered', 'rejected')),
        reason           TEXT,
        detail           TEXT,
        at               TEXT NOT NULL,
        answer_msg_id    TEXT NOT NULL,
        hash_matches     INTEGER NOT NULL, -- the answer names the envelope we sent, byte for byte
        PRIMARY KEY (msg_id, recipient)
    );

    CREATE TABLE rejections (            -- envelopes this node refused
        stream_seq       INTEGER PRIMARY KEY,
        publisher        TEXT NOT NULL,   -- the sending account, as the broker guarantees it
        envelope_sha256  TEXT NOT NULL,
        msg_id           TEXT,
        kind             TEXT,
        reason           TEXT NOT NULL,
        detail           TEXT NOT NULL,
        rejected_at      TEXT NOT NULL,
        answer_msg_id    TEXT,            -- our signed rejection, if we sent one
        quarantined      INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE opens (                 -- every time an officer opened a message
        msg_id           TEXT NOT NULL REFERENCES messages (msg_id),
        officer          TEXT NOT NULL,
        at               TEXT NOT NULL
    );
    """,
    2: """
    CREATE INDEX messages_by_hash ON messages (envelope_sha256);
    """,
    # A refusal is identified by the stream sequence AND the envelope's hash: sequences start
    # again if an inbox stream is ever recreated or restored from an older backup.
    3: """
    CREATE TABLE rejections_v3 (
        stream_seq       INTEGER NOT NULL,
        publisher        TEXT NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        msg_id           TEXT,
        kind             TEXT,
        reason           TEXT NOT NULL,
        detail           TEXT NOT NULL,
        rejected_at      TEXT NOT NULL,
        answer_msg_id    TEXT,
        quarantined      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (stream_seq, envelope_sha256)
    );
    INSERT INTO rejections_v3 SELECT stream_seq, publisher, envelope_sha256, msg_id, kind, reason,
        detail, rejected_at, answer_msg_id, quarantined FROM rejections;
    DROP TABLE rejections;
    ALTER TABLE rejections_v3 RENAME TO rejections;
    """,
    4: """
    CREATE TABLE alerts (                -- what an operator must look at: a forged or replayed
        at               TEXT NOT NULL,   -- directory entry, for instance
        source           TEXT NOT NULL,
        detail           TEXT NOT NULL
    );
    """,
    5: """
    CREATE TABLE audit_outbox (          -- signed events for the audit service, with their fact
        event_id         TEXT PRIMARY KEY,
        payload          BLOB NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'sent')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL
    );
    CREATE INDEX audit_outbox_due ON audit_outbox (state, next_attempt_at);
    CREATE TABLE witnessed (             -- the latest audit checkpoint this node verified
        size             INTEGER NOT NULL,
        note             TEXT NOT NULL
    );
    """,
    # The Convention's procedures (services/node/casework.py): one row per tracing request and
    # requested state, licensed transfer, controlled delivery, and received message under Art. XII
    # consent. Derived from the messages: `cifta node rebuild-casework` makes it again from them.
    6: """
    CREATE TABLE casework (
        family           TEXT NOT NULL,   -- tracing, transfer, delivery, confidentiality
        key              TEXT NOT NULL,
        state            TEXT NOT NULL,   -- JSON of the workflow's state
        open             INTEGER NOT NULL, -- it still has deadlines to watch
        case_id          TEXT,
        updated_at       TEXT NOT NULL,
        PRIMARY KEY (family, key)
    );
    CREATE INDEX casework_open ON casework (open, family);
    """,
    # Copies this node forwarded under Art. XII, and the received message each copies: the copy's
    # envelope does not say it (its sender is this node), so the rules and the originator of the
    # original follow the copy from here (an export of the copy, a consent asked about it).
    7: """
    CREATE TABLE forwards (
        copy_msg_id      TEXT PRIMARY KEY REFERENCES messages (msg_id),
        original_msg_id  TEXT NOT NULL REFERENCES messages (msg_id),
        officer          TEXT NOT NULL,
        at               TEXT NOT NULL
    );
    """,
    # Deliveries that cannot be decided yet (services/node/parking.py), acknowledged at the hub
    # and kept here under their publisher's budget; and facts the node keeps about itself (its
    # clock's offset from the hub's, measured by the running node, read by every command).
    8: """
    CREATE TABLE parked (
        stream_seq       INTEGER NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        publisher        TEXT NOT NULL,   -- the account that published it (a broker fact)
        subject          TEXT NOT NULL,
        data             BLOB NOT NULL,
        stored_at        TEXT NOT NULL,   -- the hub's storage time
        reason           TEXT NOT NULL,   -- why it waits: unknown_sender_key, illegal_transition
        detail           TEXT NOT NULL,
        case_id          TEXT,            -- from the clear header, to wake it when its case moves
        attempts         INTEGER NOT NULL,
        parked_at        REAL NOT NULL,   -- Unix seconds
        scheduled_at     REAL NOT NULL,   -- the next try its schedule asks for (it counts)
        next_attempt_at  REAL NOT NULL,   -- earlier when woken (a woken try does not count)
        PRIMARY KEY (stream_seq, envelope_sha256)
    );
    CREATE INDEX parked_due ON parked (next_attempt_at);
    CREATE INDEX parked_publisher ON parked (publisher);
    CREATE INDEX parked_case ON parked (case_id);
    CREATE TABLE node_state (
        name             TEXT PRIMARY KEY,
        value            TEXT NOT NULL,   -- JSON
        at               TEXT NOT NULL
    );
    """,
    9: """
    -- attachments of received messages (docs/envelope.md section 13): fetched and verified
    -- before the receipt, which names them, is sealed
    CREATE TABLE attachment_fetches (
        msg_id           TEXT PRIMARY KEY REFERENCES messages (msg_id),
        sender           TEXT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'fetched', 'refused')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,   -- Unix seconds
        reason           TEXT,            -- refused: the reason code
        detail           TEXT,
        at               TEXT NOT NULL    -- when it was queued, fetched or refused
    );
    CREATE INDEX attachment_fetches_due ON attachment_fetches (state, next_attempt_at);
    """,
    # The officers who use this node's console (services/core/accounts.py): their profile and
    # role, Argon2id password hash, TOTP second factor (RFC 6238) and lockout; server-side
    # console sessions (the cookie holds a token whose SHA-256 is kept here); and every action
    # recorded under the officer's structured identity.
    10: """
    CREATE TABLE officers (
        login              TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        position           TEXT NOT NULL,
        agency             TEXT NOT NULL,
        language           TEXT NOT NULL CHECK (language IN ('es', 'en', 'fr', 'pt')),
        role               TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin')),
        password_hash      TEXT NOT NULL,   -- Argon2id (RFC 9106)
        totp_secret        TEXT,            -- base32; NULL until enrolled
        totp_last_counter  INTEGER NOT NULL DEFAULT 0,  -- no code is accepted twice
        failed_attempts    INTEGER NOT NULL DEFAULT 0,
        locked_until       TEXT,
        disabled_at        TEXT,
        created_at         TEXT NOT NULL
    );
    CREATE TABLE console_sessions (
        token_sha256       TEXT PRIMARY KEY,
        login              TEXT NOT NULL REFERENCES officers (login),
        csrf_token         TEXT NOT NULL,
        complete           INTEGER NOT NULL,  -- 0 while the second factor is being enrolled
        pending_totp       TEXT,
        created_at         TEXT NOT NULL,
        last_seen_at       TEXT NOT NULL
    );
    CREATE INDEX console_sessions_login ON console_sessions (login);
    CREATE TABLE officer_actions (
        id                 INTEGER PRIMARY KEY,
        at                 TEXT NOT NULL,
        login              TEXT NOT NULL,
        identity           TEXT NOT NULL,   -- JSON: name, position, agency at the time
        action             TEXT NOT NULL,
        detail             TEXT NOT NULL    -- JSON, metadata only
    );
    CREATE INDEX officer_actions_login ON officer_actions (login, id);
    """,
    # Security keys as the officers' second factor (services/core/security_keys.py, WebAuthn):
    # each key's credential id and COSE public key, its signature counter (a counter that does
    # not go forward may be a cloned key) and transports; and the challenges waiting for an
    # answer, bound to the session that asked (its token's SHA-256) and used once.
    11: """
    CREATE TABLE officer_keys (
        credential_id      TEXT PRIMARY KEY,  -- base64url
        login              TEXT NOT NULL REFERENCES officers (login),
        public_key         BLOB NOT NULL,     -- COSE_Key (RFC 9052)
        sign_count         INTEGER NOT NULL,
        transports         TEXT NOT NULL,     -- JSON list: usb, nfc, ble, internal, hybrid
        created_at         TEXT NOT NULL,
        last_used_at       TEXT
    );
    CREATE INDEX officer_keys_login ON officer_keys (login);
    CREATE TABLE webauthn_challenges (
        session_sha256     TEXT NOT NULL,
        purpose            TEXT NOT NULL CHECK (purpose IN ('register', 'authenticate')),
        challenge          BLOB NOT NULL,
        expires_at         TEXT NOT NULL,
        PRIMARY KEY (session_sha256, purpose)
    );
    """,
    # Attachments are stored at the hub in the sender's own stream (docs/envelope.md section
    # 13.4): the objects each sent message names, in order, to check each recipient's receipt
    # against, and the recipients whose objects the node is to purge there once confirmed.
    12: """
    CREATE TABLE sent_attachments (
        msg_id           TEXT PRIMARY KEY REFERENCES messages (msg_id),
        objects          TEXT NOT NULL,   -- JSON: the manifests' ciphertext_sha256, in order
        bytes            INTEGER NOT NULL -- their ciphertexts' size: one recipient's copy
    );
    CREATE TABLE attachment_purges (
        msg_id           TEXT NOT NULL REFERENCES messages (msg_id),
        recipient        TEXT NOT NULL,
        state            TEXT NOT NULL CHECK (state IN ('pending', 'purged')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,   -- Unix seconds
        detail           TEXT,            -- why the last attempt failed
        at               TEXT NOT NULL,   -- when it was queued or done
        PRIMARY KEY (msg_id, recipient)
    );
    CREATE INDEX attachment_purges_due ON attachment_purges (state, next_attempt_at);
    """,
    13: """
    -- how many times in a row the hub said a segment of the message is not there, and when it
    -- first did (NULL: not now); a refusal as attachment_missing waits for that to have lasted
    -- (a lagging replica answers so too)
    ALTER TABLE attachment_fetches ADD COLUMN missing_since REAL;
    ALTER TABLE attachment_fetches ADD COLUMN missing_count INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX attachment_fetches_sender ON attachment_fetches (state, sender, next_attempt_at);
    """,
    # A refused envelope is kept here from its refusal until its quarantine copy is filed at the
    # hub: the delivery is terminated once the refusal commits, and the copy leaves on its own
    # (services/node/quarantine.py), so a flood's refusals never hold up the inbox's consumer.
    14: """
    CREATE TABLE quarantine_outbox (
        stream_seq       INTEGER NOT NULL,
        envelope_sha256  TEXT NOT NULL,
        subject          TEXT NOT NULL,   -- the inbox subject it was published on
        envelope         BLOB NOT NULL,
        held_at          REAL NOT NULL,   -- Unix seconds: since when it waits
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,   -- Unix seconds
        last_error       TEXT,
        PRIMARY KEY (stream_seq, envelope_sha256),
        FOREIGN KEY (stream_seq, envelope_sha256) REFERENCES rejections
    );
    CREATE INDEX quarantine_outbox_due ON quarantine_outbox (next_attempt_at);
    """,
    # Reception awareness (docs/envelope.md section 14): a message sent and not answered by its
    # recipient's receipt or rejection is sent again, the same bytes, until one answers.
    15: """
    -- how many times the message was sent again for want of an answer, and when the next is
    -- due if none comes (Unix seconds; NULL: none awaited: answered, protocol, or given up)
    ALTER TABLE outbox ADD COLUMN resends INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN answer_due_at REAL;
    CREATE INDEX outbox_answer_due ON outbox (answer_due_at) WHERE answer_due_at IS NOT NULL;
    -- a message's answers, found when its sender sends it again (the answer may have been lost)
    CREATE INDEX messages_answers ON messages (in_reply_to) WHERE in_reply_to IS NOT NULL;
    -- a copy sent again of an envelope refused or parked here, found by its bytes and publisher
    CREATE INDEX rejections_by_hash ON rejections (envelope_sha256, publisher);
    CREATE INDEX parked_by_hash ON parked (envelope_sha256, publisher);
    """,
}

#: The version this software writes: the last migration's.
SCHEMA_VERSION = max(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The store was written by newer software than this."""


def migrate(db: sqlite3.Connection, migrations: Mapping[int, str] = MIGRATIONS) -> int:
    """Bring the store from its ``user_version`` to the last of ``migrations``, one atomic
    script per version; returns the version reached.

    Another process sharing the file (the officer's CLI and the node) may migrate it at the same
    moment: the write lock orders the two, and a version the other one already reached is not
    run again.
    """
    target = max(migrations)
    version = _version(db)
    if version > target:
        raise SchemaTooNew(f"store schema {version} is newer than this software ({target})")
    while version < target:
        step = version + 1
        script = f"BEGIN IMMEDIATE;\n{migrations[step]}\nPRAGMA user_version = {step};\nCOMMIT;"
        try:
            db.executescript(script)
        except sqlite3.Error:
            if db.in_transaction:  # the script stopped half way: none of it stays
                db.execute("ROLLBACK")
            if _version(db) < step:  # not migrated meanwhile by the other process
                raise
        version = _version(db)
    return version


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])
