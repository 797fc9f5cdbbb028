"""``cifta records`` and ``cifta lookup`` against running nodes, up to the tracing request."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.cli.main import main
from tests.support.hub import Hub, eventually
from tests.support.nodes import running_node

pytestmark = pytest.mark.asyncio

GOOD = """make,model,calibre,serial,category,reference
Glock,G19 Gen5,9x19mm,BXKM-417,seized,FGR/SIN/2026/1187
Beretta,92FS,9 mm,BER 004512,lost_stolen,
"""
BAD = """make,model,calibre,serial,category
Glock,G19,9mm,--,seized
,92FS,9mm,A1,seized
Colt,M1911,.45,C1,borrowed
"""


async def cifta(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    # the commands run their own event loop, as from a terminal: off this test's loop
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_records_then_a_lookup_that_becomes_a_tracing_request(
    hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("MEX", "USA", "COL"):
        hub.node_settings(party, tmp_path).save()
    usa, mex = str(tmp_path / "USA"), str(tmp_path / "MEX")
    (tmp_path / "bad.csv").write_text(BAD)
    (tmp_path / "good.csv").write_text(GOOD)
    async with (
        running_node(hub, "USA", tmp_path),
        running_node(hub, "COL", tmp_path),
        running_node(hub, "MEX", tmp_path),
    ):
        code, _, err = await cifta(
            capsys, "records", "import", "--home", usa, str(tmp_path / "bad.csv")
        )
        assert code == 2 and "nothing imported" in err
        assert "line 2, serial '--': no letter or digit in it" in err
        assert "line 3, make '': no letter or digit in it" in err
        assert "line 4, category 'borrowed': expected seized, lost_stolen, traced, exported" in err
        assert "Traceback" not in err

        code, out, _ = await cifta(
            capsys, "records", "import", "--home", usa, str(tmp_path / "good.csv")
        )
        assert (
            code == 0 and "imported 2 record(s)" in out and "filter of 2 record(s) published" in out
        )
        code, out, _ = await cifta(capsys, "records", "list", "--home", usa, "--json")
        listed = json.loads(out)
        assert [r["firearm"]["serial"] for r in listed] == ["8XKM417", "8ER4512"]
        code, out, _ = await cifta(capsys, "records", "publish", "--home", str(tmp_path / "COL"))
        assert code == 0 and "filter of 0 record(s) published" in out

        request = tmp_path / "request.json"
        code, out, _ = await cifta(
            capsys, "lookup", "--home", mex, "--make", "GLOCK", "--model", "19",
            "--calibre", "9mm", "--serial", "bxkm 417", "--trace", str(request),
        )  # fmt: skip
        assert code == 0 and "holds a record: USA" in out
        command = f"cifta trace new --body {request} --to USA"
        assert command in out
        body = json.loads(request.read_text())
        assert body["firearm"]["markings"]["serial_number"] == "bxkm 417"
        code, out, err = await cifta(capsys, *command.split()[1:], "--home", mex)
        assert code == 0, err

        code, out, _ = await cifta(capsys, "records", "stats", "--home", usa, "--json")
        stats = json.loads(out)
        assert stats["evaluated_by_asker"] == {"MEX": 1} and stats["records"] == 2
        code, out, _ = await cifta(capsys, "records", "stats", "--home", mex, "--json")
        assert json.loads(out)["lookups_with_hits"] == 1

        code, out, _ = await cifta(
            capsys, "records", "remove", "--home", usa, listed[0]["record_id"]
        )
        assert code == 0 and "filter of 1 record(s) published" in out
        code, out, _ = await cifta(
            capsys, "lookup", "--home", mex, "--make", "Glock", "--serial", "BXKM417"
        )
        assert code == 0 and "holds a record: no state" in out

        # USA replaces its OPRF key: its running node takes it up, its filter follows
        code, out, _ = await cifta(capsys, "records", "rotate-key", "--home", usa)
        assert code == 0 and "new OPRF key" in out and "filter of 1 record(s) published" in out

        async def beretta_found() -> bool:
            code, out, _ = await cifta(capsys, "lookup", "--home", mex, "--make", "Beretta",
                                       "--serial", "BER4512")  # fmt: skip
            return code == 0 and "holds a record: USA" in out

        await eventually(beretta_found, what="a hit under USA's new key")

        code, _, err = await cifta(
            capsys, "lookup", "--home", mex, "--make", "Glock", "--serial", "-"
        )
        assert code == 2 and "serial '-': no letter or digit in it" in err
