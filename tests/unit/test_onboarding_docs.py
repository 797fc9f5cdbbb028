"""Every place that tells a state what its onboarding bundle holds names the same files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.cli.node_cmd import BUNDLE_FILES

ROOT = Path(__file__).resolve().parents[2]


def section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    # up to the next heading (a shell comment in a code block starts with one "#" only)
    found = re.search(r"\n##+ ", text[start + len(heading) :])
    return text[start : start + len(heading) + found.start()] if found else text[start:]


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("README, running one node", section(ROOT / "README.md", "## Running one node for real")),
        ("operations 1.3, the bundle", section(ROOT / "docs/operations.md", "### 1.3")),
        ("operations 1.9, first hub", section(ROOT / "docs/operations.md", "### 1.9")),
        ("operations 2.2, setting up", section(ROOT / "docs/operations.md", "### 2.2")),
    ],
    ids=lambda v: v if len(v) < 40 else "",
)
def test_each_onboarding_text_names_every_file_of_the_bundle(where: str, text: str) -> None:
    named = {f for f in BUNDLE_FILES if re.search(rf"`?{re.escape(f)}`?", text)}
    assert named == set(BUNDLE_FILES), f"{where} leaves out {set(BUNDLE_FILES) - named}"
