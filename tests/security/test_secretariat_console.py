"""The secretariat console refuses what it must: no page without a session, no state change
without the session's CSRF token, and the key id of a pending registration never in a page."""

from __future__ import annotations

import html
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.console.secretariat.app import secretariat_accounts
from services.console.secretariat.pages import router
from services.console.web.security import CONTENT_SECURITY_POLICY
from services.secretariat.approval_guard import FREEZE, MAX_WRONG, Tally, apply
from tests.support.console import Clock, csrf_of, sign_in
from tests.support.hub import Hub
from tests.support.secretariat import console_app, file_registration, operators


def test_every_page_needs_a_session_and_every_change_its_csrf_token(hub_home: Hub) -> None:
    clock = Clock()
    lucia, _ = operators()
    app = console_app(hub_home, (lucia,), clock)
    client = TestClient(app)
    request_id, kid = file_registration(hub_home, "BRA")
    paths = sorted(
        r.path.replace("{request_id}", request_id).replace("{party}", "MEX")
        .replace("{table}", "tracing")
        for r in router.routes  # the app wraps an included router's routes
        if isinstance(r, APIRoute)
    )  # fmt: skip
    assert "/directory/requests/" + request_id in paths and "/audit/verify" in paths
    for path in paths:
        method = "POST" if path.endswith(("/approve", "/decline", "/revoke", "/verify")) else "GET"
        answer = client.request(method, path, follow_redirects=False)
        assert answer.status_code in (303, 403), path
        if answer.status_code == 303:
            assert answer.headers["location"] == "/login", path

    assert sign_in(client, lucia, clock).status_code == 303
    review = client.get(f"/directory/requests/{request_id}")
    assert review.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert kid not in review.text
    for token in ("", "forged-" + csrf_of(review.text)):
        answer = client.post(
            f"/directory/requests/{request_id}/approve", data={"csrf_token": token, "key_id": kid}
        )
        assert answer.status_code == 403, token
    assert hub_home.directory.entry("BRA") is None


def _approve(client: TestClient, request_id: str, key_id: str) -> Any:
    review = client.get(f"/directory/requests/{request_id}")
    form = {"csrf_token": csrf_of(review.text), "key_id": key_id}
    return client.post(f"/directory/requests/{request_id}/approve", data=form)


def test_five_wrong_key_ids_freeze_the_request_for_fifteen_minutes(hub_home: Hub) -> None:
    """Guessing the id read out by telephone is the way around the check: after five wrong ones
    even the right id is refused for 15 minutes, in the reviewer's language, with the reason."""
    clock = Clock()
    lucia, _ = operators()
    client = TestClient(console_app(hub_home, (lucia,), clock))
    request_id, kid = file_registration(hub_home, "BRA")
    assert sign_in(client, lucia, clock).status_code == 303
    answers = [_approve(client, request_id, secrets.token_hex(16)) for _ in range(MAX_WRONG)]
    assert [a.status_code for a in answers] == [422] * (MAX_WRONG - 1) + [429]
    assert "Se escribieron 5 identificadores de clave erróneos" in html.unescape(answers[-1].text)
    frozen = _approve(client, request_id, kid)  # the right one, too soon
    assert frozen.status_code == 429  # (what was typed is echoed back: it is theirs)
    assert hub_home.directory.entry("BRA") is None
    reasons = [a["detail"].get("reason") for a in secretariat_accounts(hub_home.home).actions()]
    assert reasons.count("approval_frozen") == 2 and reasons.count("key_id_mismatch") == 4
    clock.advance(FREEZE.total_seconds())
    assert sign_in(client, lucia, clock).status_code == 303  # the session idled out meanwhile
    assert _approve(client, request_id, kid).status_code == 200
    assert hub_home.directory.entry("BRA") is not None


def test_five_wrong_key_ids_spread_over_requests_freeze_the_operator(hub_home: Hub) -> None:
    clock = Clock()
    lucia, _ = operators()
    client = TestClient(console_app(hub_home, (lucia,), clock))
    first, _ = file_registration(hub_home, "BRA")
    second, kid = file_registration(hub_home, "PAN")
    assert sign_in(client, lucia, clock).status_code == 303
    for request_id in (first, first, first, second):
        assert _approve(client, request_id, secrets.token_hex(16)).status_code == 422
    fifth = _approve(client, second, secrets.token_hex(16))
    assert fifth.status_code == 429
    assert "Usted escribió 5 identificadores de clave erróneos" in html.unescape(fifth.text)
    assert _approve(client, second, kid).status_code == 429
    assert hub_home.directory.entry("PAN") is None


def test_a_freeze_is_counted_anew_once_over() -> None:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    tally = Tally()
    for _ in range(MAX_WRONG):
        tally = apply(tally, "wrong", now)
    assert tally.frozen_at(now) == now + FREEZE and tally.wrong == 0
    later = now + FREEZE + timedelta(seconds=1)
    assert tally.frozen_at(later) is None
    assert apply(tally, "wrong", later) == Tally(wrong=1)
    assert apply(Tally(wrong=4), "right", now) == Tally()
