"""The web client in a real browser against the real stack (issue 8).

Access tokens live 5 s here, so every scenario outlives several of them. After each step the
tests check that no token is readable by script: nothing in localStorage, sessionStorage or
document.cookie, and the refresh cookie only as HttpOnly."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    Route,
    expect,
)

from tests.infra import Stack

pytestmark = pytest.mark.browser

REFRESH_COOKIE = "refresh_token"
# Reports CSP violations on the console too, where the watcher below sees them.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""
STORAGE_DUMP = """() => {
  const dump = (storage) => Object.fromEntries(Array.from(
    {length: storage.length}, (_, i) => [storage.key(i), storage.getItem(storage.key(i))]));
  return JSON.stringify({local: dump(localStorage), session: dump(sessionStorage),
                         cookie: document.cookie});
}"""


def new_email(name: str) -> str:
    return f"{name}-{secrets.token_hex(4)}@example.com"


def new_password() -> str:
    return f"violet-orbit-{secrets.token_hex(3)}-lantern"


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def is_refresh(response: Response) -> bool:
    return response.url.endswith("/auth/refresh") and response.request.method == "POST"


@dataclass
class Watch:
    """Console errors, uncaught exceptions and CSP violations of every page of a context.

    A failed HTTP status is logged by Chromium as a console error ("Failed to load resource");
    those are fine only for the requests a test announces with `allow`."""

    problems: list[str] = field(default_factory=list)
    allowed: list[tuple[str, int]] = field(default_factory=lambda: [("/auth/refresh", 401)])

    def attach(self, page: Page) -> None:
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def allow(self, path: str, status: int) -> None:
        self.allowed.append((path, status))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        failed = re.match(r"Failed to load resource: .* status of (\d+)", message.text)
        url = message.location.get("url", "")
        if failed and any(
            url.split("?")[0].endswith(path) and int(failed.group(1)) == status
            for path, status in self.allowed
        ):
            return
        self.problems.append(f"console error: {message.text} ({url})")

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@dataclass
class Client:
    """One browser profile (a context: its own cookie jar) of the web client."""

    stack: Stack
    context: BrowserContext
    watch: Watch

    def open(self) -> Page:
        page = self.context.new_page()
        page.goto(self.stack.url)
        expect(page.locator("#screen-loading")).to_be_hidden()
        return page

    def assert_no_token_exposed(self) -> None:
        cookies = self.context.cookies()
        refresh_values = [c["value"] for c in cookies if c["name"] == REFRESH_COOKIE]
        for cookie in cookies:
            assert "eyJ" not in cookie["value"], f"a JWT in cookie {cookie['name']}"
            assert cookie["name"] == REFRESH_COOKIE, f"unexpected cookie {cookie['name']}"
            assert cookie["httpOnly"] is True, "the refresh cookie must be HttpOnly"
            assert cookie["sameSite"] == "Strict"
            assert cookie["path"] == "/auth"
        for page in self.context.pages:
            readable = page.evaluate(STORAGE_DUMP)
            assert "eyJ" not in readable, f"a JWT is readable by script: {readable}"
            assert REFRESH_COOKIE not in readable, f"the refresh cookie is readable: {readable}"
            for value in refresh_values:
                assert value not in readable, "the refresh token is readable by script"

    def refresh_cookie(self) -> str | None:
        for cookie in self.context.cookies():
            if cookie["name"] == REFRESH_COOKIE:
                return cookie["value"]
        return None


@pytest.fixture
def clients(web_stack: Stack, browser: Browser) -> Iterator[list[Client]]:
    """A factory's worth of independent browser profiles, closed after the test."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        client.context.close()
    for client in opened:
        client.watch.assert_clean()


def new_client(clients: list[Client], stack: Stack, browser: Browser) -> Client:
    context = browser.new_context()
    context.set_default_timeout(10_000)
    context.add_init_script(CSP_REPORTER)
    watch = Watch()
    context.on("page", watch.attach)
    client = Client(stack, context, watch)
    clients.append(client)
    return client


# --- Page helpers -----------------------------------------------------------------------------


def heading(page: Page, name: str) -> Locator:
    return page.get_by_role("heading", name=name, level=1, exact=True)


def sign_up(page: Page, email: str, password: str) -> None:
    page.get_by_role("link", name="Create an account").click()
    expect(heading(page, "Create an account")).to_be_focused()
    form = page.locator("#register-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign up").click()


def log_in(page: Page, email: str, password: str) -> None:
    form = page.locator("#login-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Log in").click()


def add_task(page: Page, title: str, description: str = "") -> None:
    page.get_by_label("Title", exact=True).first.fill(title)
    page.locator("#new-task-description").fill(description)
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/tasks" in r.url
    ) as created:
        page.get_by_role("button", name="Add task").click()
    assert created.value.status == 201
    expect(task_item(page, title)).to_be_visible()


def task_items(page: Page) -> Locator:
    return page.locator("#task-list > li")


def task_item(page: Page, title: str) -> Locator:
    return task_items(page).filter(has=page.get_by_text(title, exact=True))


def expect_tasks(page: Page, titles: list[str]) -> None:
    expect(task_items(page).locator(".task-title")).to_have_text(titles)


def expect_signed_in(page: Page) -> None:
    expect(heading(page, "My tasks")).to_be_visible()
    expect(page.locator("#screen-login")).to_be_hidden()


def expect_signed_out(page: Page) -> None:
    expect(heading(page, "Log in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


def wait_for_refresh(page: Page, timeout: float = 15_000) -> Response:
    with page.expect_response(is_refresh, timeout=timeout) as answer:
        pass
    return answer.value


# --- Scenarios --------------------------------------------------------------------------------


def test_session_lifecycle_across_reload_expiry_tabs_and_users(
    web_stack: Stack, browser: Browser, clients: list[Client], screenshots: Path
) -> None:
    ada = new_client(clients, web_stack, browser)
    page = ada.open()
    expect(heading(page, "Log in")).to_be_focused()
    page.screenshot(path=screenshots / "login.png", full_page=True)
    ada.assert_no_token_exposed()

    # Sign up: signed in at once, the refresh token only in the HttpOnly cookie.
    email, password = new_email("ada"), new_password()
    sign_up(page, email, password)
    expect(heading(page, "My tasks")).to_be_focused()
    expect(page.get_by_role("status")).to_have_text("Your account is ready. You are logged in.")
    expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    assert ada.refresh_cookie(), "sign-up in browser mode sets the refresh cookie"
    ada.assert_no_token_exposed()

    add_task(page, "Buy oat milk")
    add_task(page, "Write the report", "Section 3 needs the new figures")
    expect_tasks(page, ["Write the report", "Buy oat milk"])
    expect(page.locator("#task-count")).to_have_text("2 tasks")
    page.screenshot(path=screenshots / "tasks.png", full_page=True)
    ada.assert_no_token_exposed()

    # Reload: the access token is gone with the page, the cookie restores the session.
    with page.expect_response(is_refresh) as restored:
        page.reload()
    assert restored.value.status == 200
    first_token = restored.value.json()["access_token"]
    expect_signed_in(page)
    expect_tasks(page, ["Write the report", "Buy oat milk"])
    ada.assert_no_token_exposed()

    # Outlive that access token: the client refreshes on its own schedule, never asking to log in.
    expires = jwt_claims(first_token)["exp"]
    while time.time() <= expires + 0.5:
        assert wait_for_refresh(page).status == 200
    with page.expect_request(lambda r: r.method == "POST" and "/tasks" in r.url) as sent:
        add_task(page, "Renew passport")
    assert sent.value.headers["authorization"] != f"Bearer {first_token}"
    expect_signed_in(page)
    expect_tasks(page, ["Renew passport", "Write the report", "Buy oat milk"])
    ada.assert_no_token_exposed()

    # The sessions page lists this browser as the current device.
    page.get_by_role("link", name="Sessions").click()
    expect(heading(page, "Sessions")).to_be_focused()
    expect(page.locator("#session-list > li")).to_have_count(1)
    expect(page.locator("#session-list .badge")).to_have_text("This device")
    page.screenshot(path=screenshots / "sessions.png", full_page=True)
    page.get_by_role("link", name="My tasks").click()
    expect(heading(page, "My tasks")).to_be_focused()

    # A second tab of the same profile shares the cookie and restores the same session.
    other = ada.open()
    expect_signed_in(other)
    expect_tasks(other, ["Renew passport", "Write the report", "Buy oat milk"])

    # Both tabs refresh with the same cookie at the same moment: hold the first scheduled
    # refresh until the other tab's arrives, then let both go. Both stay signed in.
    held: list[Route] = []
    cookies_sent: list[str | None] = []

    def hold(route: Route) -> None:
        held.append(route)
        cookies_sent.append(route.request.header_value("cookie"))
        if len(held) == 2:
            for waiting in held:
                waiting.continue_()

    ada.context.route("**/auth/refresh", hold)
    with (
        page.expect_response(is_refresh, timeout=15_000) as answer_a,
        other.expect_response(is_refresh, timeout=15_000) as answer_b,
    ):
        pass
    ada.context.unroute("**/auth/refresh", hold)
    assert len(held) == 2
    assert {held[0].request.frame.page, held[1].request.frame.page} == {page, other}
    assert cookies_sent[0], "the refresh cookie went with the request"
    assert cookies_sent[0] == cookies_sent[1], "both tabs presented the same refresh token"
    assert answer_a.value.status == 200, answer_a.value.text()
    assert answer_b.value.status == 200, answer_b.value.text()
    expect_signed_in(page)
    expect_signed_in(other)
    ada.assert_no_token_exposed()

    # Both keep working, and their next refreshes succeed: the race revoked nothing.
    add_task(other, "Call the plumber")
    add_task(page, "Water the plants")
    assert wait_for_refresh(page).status == 200
    assert wait_for_refresh(other).status == 200
    expect_signed_in(page)
    expect_signed_in(other)
    ada.assert_no_token_exposed()

    # Log out in one tab: the other follows without a request of its own.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect_signed_out(page)
    expect(heading(page, "Log in")).to_be_focused()
    expect_signed_out(other)
    expect(other.get_by_role("status")).to_have_text("You were logged out in another tab.")
    assert ada.refresh_cookie() is None, "logout clears the refresh cookie"
    ada.assert_no_token_exposed()
    other.reload()
    expect_signed_out(other)

    # Another user in another profile sees none of Ada's tasks.
    bob = new_client(clients, web_stack, browser)
    bob_page = bob.open()
    sign_up(bob_page, new_email("bob"), new_password())
    expect_signed_in(bob_page)
    expect(bob_page.locator("#task-empty")).to_be_visible()
    expect(task_items(bob_page)).to_have_count(0)
    for title in ("Buy oat milk", "Write the report", "Renew passport"):
        expect(bob_page.get_by_text(title)).to_have_count(0)
    add_task(bob_page, "Bob's only task")
    expect_tasks(bob_page, ["Bob's only task"])
    bob.assert_no_token_exposed()

    # Ada logs back in: her tasks are all there, Bob's is not, and her other tab follows.
    log_in(page, email, password)
    everything = [
        "Water the plants",
        "Call the plumber",
        "Renew passport",
        "Write the report",
        "Buy oat milk",
    ]
    for tab in (page, other):
        expect_signed_in(tab)
        expect_tasks(tab, everything)
    ada.assert_no_token_exposed()


def test_a_new_browser_is_never_signed_in_as_someone_else(
    web_stack: Stack, browser: Browser, clients: list[Client]
) -> None:
    """A browser without a cookie must land on the login screen, whoever else is signed in.
    (Regression: a cookie jar in the gateway's upstream client replayed the last refresh cookie
    it had relayed onto every request that came without one.)"""
    ada = new_client(clients, web_stack, browser)
    ada_page = ada.open()
    sign_up(ada_page, new_email("owner"), new_password())
    expect_signed_in(ada_page)

    stranger = new_client(clients, web_stack, browser)
    with stranger.context.expect_event("response", is_refresh) as answer:
        page = stranger.open()
    assert answer.value.status == 401, "a refresh without a cookie must fail"
    expect_signed_out(page)
    assert stranger.refresh_cookie() is None
    stranger.assert_no_token_exposed()


def test_tasks_edit_toggle_filter_delete(
    web_stack: Stack, browser: Browser, clients: list[Client]
) -> None:
    client = new_client(clients, web_stack, browser)
    page = client.open()
    sign_up(page, new_email("tasks"), new_password())
    expect_signed_in(page)
    add_task(page, "Draft")
    add_task(page, "Second")

    # Edit title and description.
    page.get_by_role("button", name="Edit task: Draft").click()
    editor = page.get_by_role("form", name="Edit task: Draft")
    expect(editor.get_by_label("Title")).to_be_focused()
    editor.get_by_label("Title").fill("Final draft")
    editor.get_by_label("Description").fill("Send it to Grace")
    editor.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Task “Final draft” saved.")
    expect(task_item(page, "Final draft")).to_contain_text("Send it to Grace")
    expect(page.get_by_role("button", name="Edit task: Final draft")).to_be_focused()

    # Escape cancels an edit.
    page.get_by_role("button", name="Edit task: Second").click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Edit task: Second")).to_be_focused()

    # Toggle, then filter.
    page.get_by_role("checkbox", name="Final draft").check()
    expect(page.get_by_role("checkbox", name="Final draft")).to_be_checked()
    page.get_by_role("radio", name="Pending").check()
    expect_tasks(page, ["Second"])
    expect(page.locator("#task-count")).to_have_text("1 pending task")
    page.get_by_role("radio", name="Completed").check()
    expect_tasks(page, ["Final draft"])
    page.get_by_role("checkbox", name="Final draft").uncheck()
    expect_tasks(page, [])
    expect(page.locator("#task-empty")).to_be_visible()
    page.get_by_role("radio", name="All").check()
    expect_tasks(page, ["Second", "Final draft"])

    # Delete moves focus to the next task.
    page.get_by_role("button", name="Delete task: Second").click()
    expect_tasks(page, ["Final draft"])
    expect(page.get_by_role("checkbox", name="Final draft")).to_be_focused()
    page.get_by_role("button", name="Delete task: Final draft").click()
    expect_tasks(page, [])
    expect(page.locator("#task-list-heading")).to_be_focused()
    client.assert_no_token_exposed()


def test_keyboard_only(web_stack: Stack, browser: Browser, clients: list[Client]) -> None:
    client = new_client(clients, web_stack, browser)
    page = client.open()
    email, password = new_email("keys"), new_password()
    sign_up(page, email, password)
    expect_signed_in(page)
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(heading(page, "Log in")).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.locator("#login-email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(heading(page, "My tasks")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#new-task-title")).to_be_focused()
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    expect_tasks(page, ["Typed, not clicked"])
    page.get_by_role("checkbox", name="Typed, not clicked").focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("checkbox", name="Typed, not clicked")).to_be_checked()


def test_error_messages(web_stack: Stack, browser: Browser, clients: list[Client]) -> None:
    client = new_client(clients, web_stack, browser)
    page = client.open()
    alert = page.get_by_role("alert")
    email, password = new_email("errors"), new_password()

    client.watch.allow("/auth/register", 422)
    sign_up(page, email, "password123")
    expect(alert).to_contain_text("That password is too weak")

    form = page.locator("#register-form")
    form.get_by_label("Email").fill("not-an-email@localhost")
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Sign up").click()
    expect(alert).to_contain_text("Please correct the following: Email:")

    form.get_by_label("Email").fill(email)
    form.get_by_role("button", name="Sign up").click()
    expect_signed_in(page)
    page.get_by_role("button", name="Log out", exact=True).click()
    expect_signed_out(page)

    client.watch.allow("/auth/register", 409)
    sign_up(page, email, password)
    expect(alert).to_have_text("An account with this email address already exists. Log in instead.")

    page.get_by_role("link", name="Log in").click()
    client.watch.allow("/auth/login", 401)
    log_in(page, email, "wrong-password-entirely")
    expect(alert).to_have_text("The email address or password is not correct.")

    # Answers the stack only gives under load or failure, played by the network layer.
    def problem(status: int, code: str, headers: dict[str, str]) -> Any:
        def fulfil(route: Route) -> None:
            route.fulfill(
                status=status,
                content_type="application/problem+json",
                headers=headers,
                body=json.dumps({"type": "about:blank", "status": status, "code": code}),
            )

        return fulfil

    client.watch.allow("/auth/login", 429)
    page.route("**/auth/login", problem(429, "rate_limited", {"Retry-After": "42"}))
    log_in(page, email, password)
    expect(alert).to_have_text("Too many attempts. Please wait 42 seconds and try again.")
    expect(page.locator("#login-form button[type=submit]")).to_be_disabled()
    page.unroute("**/auth/login")

    client.watch.allow("/auth/login", 503)
    page.route("**/auth/login", problem(503, "upstream_unavailable", {"Retry-After": "2"}))
    page.reload()
    log_in(page, email, password)
    expect(alert).to_have_text(
        "The service is temporarily unavailable. Please try again in a moment."
    )
    page.unroute("**/auth/login")


def test_expired_access_token_is_refreshed_once_and_the_call_retried(
    web_stack: Stack, browser: Browser, clients: list[Client]
) -> None:
    client = new_client(clients, web_stack, browser)
    page = client.open()
    sign_up(page, new_email("retry"), new_password())
    expect_signed_in(page)
    client.watch.allow("/tasks", 401)
    rejected: list[Request] = []

    def reject_once(route: Route) -> None:
        if route.request.method == "POST" and not rejected:
            rejected.append(route.request)
            route.fulfill(
                status=401,
                content_type="application/problem+json",
                headers={"WWW-Authenticate": 'Bearer realm="todo-api", error="invalid_token"'},
                body=json.dumps({"status": 401, "code": "token_expired"}),
            )
        else:
            route.continue_()

    page.route(re.compile(r".*/api/[^/]+/tasks$"), reject_once)
    page.get_by_label("Title", exact=True).first.fill("Survives a 401")
    with (
        page.expect_response(is_refresh) as refreshed,
        page.expect_response(lambda r: r.request.method == "POST" and r.status == 201) as retried,
    ):
        page.get_by_role("button", name="Add task").click()
    assert refreshed.value.status == 200
    assert len(rejected) == 1
    assert retried.value.request.headers["authorization"] != rejected[0].headers["authorization"]
    expect_tasks(page, ["Survives a 401"])
    expect_signed_in(page)


def test_ended_sessions_sign_the_browser_out(
    web_stack: Stack, browser: Browser, clients: list[Client]
) -> None:
    laptop = new_client(clients, web_stack, browser)
    phone = new_client(clients, web_stack, browser)
    email, password = new_email("devices"), new_password()
    laptop_page = laptop.open()
    sign_up(laptop_page, email, password)
    expect_signed_in(laptop_page)
    phone_page = phone.open()
    log_in(phone_page, email, password)
    expect_signed_in(phone_page)

    # From the phone, sign the laptop out: at its next refresh the laptop learns its session ended.
    phone_page.get_by_role("link", name="Sessions").click()
    sessions = phone_page.locator("#session-list > li")
    expect(sessions).to_have_count(2)
    laptop.watch.allow("/auth/refresh", 401)
    phone_page.locator("#session-list > li:not(.current)").get_by_role("button").click()
    expect(sessions).to_have_count(1)
    expect(phone_page.get_by_role("status")).to_contain_text("has been signed out")
    expect(laptop_page.get_by_role("alert")).to_have_text(
        "Your session ended, please sign in again.", timeout=15_000
    )
    expect_signed_out(laptop_page)

    # Log out everywhere from the laptop (signed in again): the phone follows at its next refresh.
    log_in(laptop_page, email, password)
    expect_signed_in(laptop_page)
    laptop_page.get_by_role("button", name="Log out everywhere").click()
    expect_signed_out(laptop_page)
    expect(laptop_page.get_by_role("status")).to_have_text(
        "You have been logged out on every device."
    )
    phone.watch.allow("/auth/refresh", 401)
    expect(phone_page.get_by_role("alert")).to_have_text(
        "Your session ended, please sign in again.", timeout=15_000
    )
    expect_signed_out(phone_page)
    laptop.assert_no_token_exposed()
    phone.assert_no_token_exposed()


def test_signing_out_this_device_from_the_sessions_page(
    web_stack: Stack, browser: Browser, clients: list[Client]
) -> None:
    client = new_client(clients, web_stack, browser)
    page = client.open()
    sign_up(page, new_email("self"), new_password())
    page.get_by_role("link", name="Sessions").click()
    expect(heading(page, "Sessions")).to_be_focused()
    page.get_by_role("button", name="Sign out this device (the one you are using)").click()
    expect_signed_out(page)
    expect(page.get_by_role("status")).to_have_text("This device has been signed out.")
    page.reload()
    expect_signed_out(page)
    client.assert_no_token_exposed()


def test_page_errors_are_caught(browser: Browser, web_stack: Stack) -> None:
    """The watcher itself works: a CSP violation is reported (so a clean run means something)."""
    context = browser.new_context()
    context.add_init_script(CSP_REPORTER)
    watch = Watch()
    context.on("page", watch.attach)
    page = context.new_page()
    page.goto(web_stack.url)
    expect(page.locator("#screen-loading")).to_be_hidden()
    with page.expect_console_message(lambda m: "CSP violation" in m.text):
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.x = 1'; document.body.append(s); }"
        )
    context.close()
    assert any("script-src" in problem for problem in watch.problems), watch.problems
