"""The name a console is served under, as browsers report it: what `--public-origin` accepts."""

from __future__ import annotations

import pytest

from services.console.web.config import ConsoleConfig, public_origin


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://Console.Example.org", "https://console.example.org"),
        ("https://console.example.org:443/", "https://console.example.org"),
        ("https://console.example.org:8443", "https://console.example.org:8443"),
        ("http://localhost:8080", "http://localhost:8080"),
    ],
)
def test_an_origin_is_kept_as_a_browser_reports_it(given: str, origin: str) -> None:
    assert public_origin(given) == origin
    assert ConsoleConfig(title="t", party="MEX", public_origin=given).public_origin == origin


@pytest.mark.parametrize(
    "given",
    ["console.example.org", "https://console.example.org/officers", "ftp://console.example.org",
     "https://10.0.0.5", "https://[::1]:8443", "https://user@console.example.org",
     "https://console.example.org?x=1", "https://console.example.org:99999"],
)  # fmt: skip
def test_anything_but_a_named_origin_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="expected https://NAME"):
        public_origin(given)
