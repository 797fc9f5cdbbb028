"""Write the JSON Schema of every contract model into ``schemas/json/``; ``--check`` for drift.

python -m schemas.generate          # (re)write the files
python -m schemas.generate --check  # exit 1 and name the files that differ from the models
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from schemas import BODY_MODELS, RECORD_MODELS, SCHEMA_VERSION
from schemas.base import PARTY_CODES
from schemas.envelope_schema import envelope_schema, header_schema
from schemas.reasons import REASON_TEXT
from schemas.registry import REQUIRED_BODY_MEMBERS

OUT = Path(__file__).parent / "json"
_ID_BASE = "https://cifta-exchange.org/schemas/v1/"


def rendered() -> dict[str, str]:
    """File name -> file text, for every body kind, every record and the reason codes."""
    files: dict[str, Any] = {}
    for kind, model in sorted(BODY_MODELS.items()):
        schema = model.model_json_schema()
        # The models default kind and schema_version for senders; a received body must carry them.
        required = list(schema.get("required", []))
        schema["required"] = [
            *REQUIRED_BODY_MEMBERS,
            *(r for r in required if r not in REQUIRED_BODY_MEMBERS),
        ]
        if "examples" in schema:  # as they travel: every body names its kind and version
            schema["examples"] = [
                {"kind": kind, "schema_version": SCHEMA_VERSION, **e} for e in schema["examples"]
            ]
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{_ID_BASE}{kind}.schema.json",
            "x-cifta-kind": kind,
            "x-cifta-schema-version": SCHEMA_VERSION,
            **schema,
        }
        files[f"{kind}.schema.json"] = schema
    for name, record in sorted(RECORD_MODELS.items()):
        files[f"{name}.schema.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{_ID_BASE}{name}.schema.json",
            **record.model_json_schema(),
        }
    files["envelope.schema.json"] = envelope_schema()
    files["envelope.protected.schema.json"] = header_schema()
    files["index.json"] = {
        "schema_version": SCHEMA_VERSION,
        "kinds": sorted(BODY_MODELS),
        "records": sorted(RECORD_MODELS),
        "reason_codes": {code.value: text for code, text in REASON_TEXT.items()},
        "regex_dialect": "ECMA-262",
        "party_codes": list(PARTY_CODES),
    }
    return {
        name: json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        for name, doc in files.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files are stale")
    args = parser.parse_args(argv)
    want = rendered()
    have = (
        {p.name: p.read_text(encoding="utf-8") for p in OUT.glob("*.json")} if OUT.exists() else {}
    )
    stale = sorted(n for n in want if have.get(n) != want[n])
    orphans = sorted(set(have) - set(want))
    if args.check:
        for name in stale:
            print(f"stale: schemas/json/{name}", file=sys.stderr)
        for name in orphans:
            print(f"orphan: schemas/json/{name}", file=sys.stderr)
        if stale or orphans:
            print("run `make schemas` and commit the result", file=sys.stderr)
            return 1
        print(f"{len(want)} schema files up to date")
        return 0
    OUT.mkdir(exist_ok=True)
    for name in orphans:
        (OUT / name).unlink()
    for name in stale:
        (OUT / name).write_text(want[name], encoding="utf-8")
    print(f"wrote {len(stale)}, removed {len(orphans)}, {len(want)} schema files in {OUT.name}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
