"""Logging follows the configuration of the moment, for every logger, however it was first used."""

from __future__ import annotations

import json

import pytest

from services.core.logs import configure, get_logger


def test_a_logger_used_before_the_settings_were_read_follows_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a command's terminal set-up, then a logger's first use (structlog binds it now) ...
    configure(json=False, level="WARNING")
    log = get_logger("early")
    log.warning("before_settings", step=1)
    log.info("below_the_terminal_level")
    first = capsys.readouterr().err
    assert "before_settings" in first and not first.startswith("{")
    assert "below_the_terminal_level" not in first
    # ... then the service's settings: JSON lines from INFO, for that same logger too
    configure(json=True, level="INFO")
    log.info("after_settings", step=2)
    log.debug("below_the_service_level")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    event = json.loads(lines[0])
    assert (event["event"], event["step"], event["level"]) == ("after_settings", 2, "info")


def test_a_raised_level_silences_a_logger_already_in_use(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(json=True, level="DEBUG")
    log = get_logger("busy")
    log.debug("verbose_event")
    configure(json=True, level="ERROR")
    log.warning("quiet_now")
    log.error("still_said")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["verbose_event", "still_said"]
