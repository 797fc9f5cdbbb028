"""The secretariat console refuses what it must: no page without a session, no state change
without the session's CSRF token, and the key id of a pending registration never in a page."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.console.secretariat.pages import router
from services.console.web.security import CONTENT_SECURITY_POLICY
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
