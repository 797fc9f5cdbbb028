"""The node store's versioned migrations: whole scripts, each one atomic."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.node.store import SCHEMA_VERSION, Store, migrations
from services.node.store.migrations import MIGRATIONS, SchemaTooNew, migrate


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def test_a_new_store_reaches_the_last_version_with_every_table(tmp_path: Path) -> None:
    Store(tmp_path / "node.sqlite").close()
    assert _version(tmp_path / "node.sqlite") == SCHEMA_VERSION == max(MIGRATIONS)
    assert {"messages", "outbox", "audit_outbox", "casework", "parked", "node_state"} <= _tables(
        tmp_path / "node.sqlite"
    )


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    Store(path).close()
    broken = {
        **MIGRATIONS,
        SCHEMA_VERSION + 1: """
        CREATE TABLE lookups (token TEXT PRIMARY KEY);
        INSERT INTO lookups VALUES ('first');
        INSERT INTO no_such_table VALUES (1);
        """,
    }
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate(db, broken)
    assert not db.in_transaction
    db.close()
    assert _version(path) == SCHEMA_VERSION
    assert "lookups" not in _tables(path)
    Store(path).close()  # and the store still opens at its version


def test_a_migration_runs_as_one_script_with_semicolons_inside_statements(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    Store(path).close()
    with_trigger = {
        **MIGRATIONS,
        SCHEMA_VERSION + 1: """
        CREATE TABLE notes (text TEXT NOT NULL);
        CREATE TABLE notes_log (text TEXT NOT NULL);
        CREATE TRIGGER notes_logged AFTER INSERT ON notes BEGIN
            INSERT INTO notes_log VALUES (new.text || ';');
        END;
        INSERT INTO notes VALUES ('a; b');
        """,
    }
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, with_trigger) == SCHEMA_VERSION + 1
    assert db.execute("SELECT text FROM notes_log").fetchall() == [("a; b;",)]
    db.close()


def test_a_store_written_by_newer_software_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew, match=f"schema {SCHEMA_VERSION + 1} is newer"):
        Store(path)


def test_a_version_another_process_reached_meanwhile_is_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node and the officer's CLI may open a new store together: one reads version 0, the
    other migrates; the first then finds its script's tables there and goes on from the version
    the other reached, instead of failing."""
    path = tmp_path / "node.sqlite"
    Store(path).close()
    real = migrations._version
    reads: list[int] = []

    def stale_first_read(db: sqlite3.Connection) -> int:
        reads.append(real(db))
        return 0 if len(reads) == 1 else reads[-1]

    monkeypatch.setattr(migrations, "_version", stale_first_read)
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db) == SCHEMA_VERSION
    assert not db.in_transaction
    db.close()
    assert _tables(path) >= {"messages", "parked"}
