"""A node's settings: node.json, the environment, and the home a command names."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.node.settings import NodeSettings


def test_environment_overrides_the_file_but_not_the_home_a_command_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for party in ("MEX", "USA"):
        NodeSettings(party=party, home=tmp_path / party, hub_url="nats://hub:4222").save()
    monkeypatch.setenv("CIFTA_NODE_HOME", str(tmp_path / "MEX"))
    monkeypatch.setenv("CIFTA_NODE_HUB_URL", "tls://hub.example.org:4222")
    usa = NodeSettings.load(tmp_path / "USA")
    assert usa.party == "USA" and usa.home == tmp_path / "USA"
    assert usa.store_path == tmp_path / "USA" / "store.sqlite"
    assert usa.hub_url == "tls://hub.example.org:4222"


def test_saved_settings_keep_only_what_differs_from_the_defaults(tmp_path: Path) -> None:
    NodeSettings(party="COL", home=tmp_path, max_deliver=7).save()
    text = (tmp_path / "node.json").read_text()
    assert '"max_deliver": 7' in text and "store" not in text and "home" not in text
    assert NodeSettings.load(tmp_path).max_deliver == 7
