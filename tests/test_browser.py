"""The browser pages, driven in Debian's Chromium: the live dashboard and the offline GraphiQL.

Every request the page makes to another host is aborted and recorded; each test asserts there
was none. Set WORKFLOW_RUNS_SCREENSHOTS=docs to write docs/dashboard.png and docs/graphiql.png.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from db.events import prune_events
from db.pool import connect
from server.app import create_app
from server.config import Settings
from tests.support import SECRET, GraphQLClient, create_run, running, token, wait_for

try:
    from playwright.async_api import Browser, Page, Route, WebSocket, async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip(
        "playwright is not installed: pip install -e '.[test]' (CI does)", allow_module_level=True
    )

CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the machine
    pytest.skip(
        f"Debian's Chromium is missing at {CHROMIUM}: apt-get install chromium (.ci/run does)",
        allow_module_level=True,
    )

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLI = [sys.executable, "-m", "server.cli"]
VIEWPORT = {"width": 1440, "height": 900}
SCREENSHOTS = os.environ.get("WORKFLOW_RUNS_SCREENSHOTS")
# Generous for a loaded 2-core CI machine; every wait ends as soon as its condition holds.
UI_TIMEOUT_MS = 20_000
RESTART_TIMEOUT_MS = 40_000
expect.set_options(timeout=UI_TIMEOUT_MS)  # assertions; actions take the context's default

START = "mutation($id: ID!) { startWorkflowRun(id: $id) { id } }"
COMPLETE = "mutation($id: ID!) { completeWorkflowRun(id: $id, output: {rows: 1204}) { id } }"
FAIL = 'mutation($id: ID!) { failWorkflowRun(id: $id, error: "upstream returned 503") { id } }'
WAIT = "mutation($id: ID!) { markWorkflowRunWaiting(id: $id) { id } }"
PAUSE = "mutation($id: ID!) { pauseWorkflowRun(id: $id) { id } }"
CANCEL = 'mutation($id: ID!) { cancelWorkflowRun(id: $id, reason: "superseded") { id } }'
TIME_OUT = "mutation($id: ID!) { timeOutWorkflowRun(id: $id) { id } }"
COUNTS = 'query { workflowRunStatusCounts(workspaceId: "ws-a") { status count } }'
EVENTS = "query($id: ID!) { workflowRun(id: $id) { events { cursor status } } }"


# ---- the browser and its guard ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        await chromium.close()


@dataclass
class Socket:
    """A WebSocket the page opened, with the JSON messages it sent and received."""

    url: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Guarded:
    """A page whose requests may only go to one origin; what else it tried is recorded."""

    page: Page
    origin: str
    blocked: list[str] = field(default_factory=list)
    sockets: list[Socket] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, ws: WebSocket) -> None:
        socket = Socket(ws.url)
        ws.on("framesent", lambda payload: socket.sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: socket.received.append(json.loads(payload)))
        self.sockets.append(socket)

    def events_received(self) -> list[dict[str, Any]]:
        """Every workflowRunStatusChanged event delivered to the page, in order."""
        return [
            message["payload"]["data"]["workflowRunStatusChanged"]
            for socket in self.sockets
            for message in socket.received
            if message["type"] == "next" and message["payload"].get("data")
        ]

    def assert_clean(self) -> None:
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        ws_origin = self.origin.replace("http://", "ws://", 1)
        stray = [s.url for s in self.sockets if not s.url.startswith(ws_origin + "/")]
        assert stray == [], f"WebSockets to other hosts: {stray}"
        assert self.errors == [], f"uncaught errors in the page: {self.errors}"


@asynccontextmanager
async def guarded_page(browser: Browser, base_url: str) -> AsyncIterator[Guarded]:
    """A fresh browser context (own storage) whose page can reach `base_url` only."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    guarded = Guarded(page, origin)

    async def only_the_app(route: Route) -> None:
        url = route.request.url
        if url.startswith(origin + "/"):
            await route.continue_()
        else:
            guarded.blocked.append(url)
            await route.abort()

    await context.route("**/*", only_the_app)
    page.on("websocket", guarded.watch)
    page.on("pageerror", lambda error: guarded.errors.append(str(error)))
    try:
        yield guarded
    finally:
        await context.close()
    guarded.assert_clean()


async def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        # Playwright creates the folder.
        await page.screenshot(path=os.path.join(SCREENSHOTS, name))


# ---- dashboard helpers ------------------------------------------------------------------------


def row(page: Page, run_id: str) -> Any:
    return page.locator(f'#runs-body tr[data-run-id="{run_id}"]')


async def expect_live(page: Page, within_ms: float = UI_TIMEOUT_MS) -> None:
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=within_ms
    )


async def expect_counts(page: Page, client: GraphQLClient) -> None:
    """The eight counts on screen are the API's."""
    data = await client.data(COUNTS)
    for entry in data["workflowRunStatusCounts"]:
        await expect(page.get_by_test_id(f"count-{entry['status']}")).to_have_text(
            str(entry["count"])
        )


async def seed(client: GraphQLClient) -> dict[str, str]:
    """A workspace with a run in every status, and a parent with children."""
    parent = await create_run(
        client,
        subjectId="wf_nightly_report",
        triggeredBy="EVENT",
        input={"date": "2026-11-24", "region": "eu-west"},
    )
    await client.data(START, {"id": parent["id"]})
    for _ in range(2):
        child = await create_run(
            client, subjectId="agt_summarize", triggeredBy="WORKFLOW", parentRunId=parent["id"]
        )
        await client.data(START, {"id": child["id"]})
        await client.data(COMPLETE, {"id": child["id"]})
    plan = [
        ("wf_invoice_sync", "USER", [START, FAIL]),
        ("swm_market_research", "SWARM", [START, WAIT]),
        ("wf_onboarding", "USER", [PAUSE]),
        ("agt_triage", "AGENT", [CANCEL]),
        ("wf_backup", "EVENT", [START, TIME_OUT]),
        ("wf_invoice_sync", "USER", [START, COMPLETE]),
        ("agt_support_reply", "AGENT", []),
    ]
    for subject, trigger, steps in plan:
        run = await create_run(client, subjectId=subject, triggeredBy=trigger)
        for step in steps:
            await client.data(step, {"id": run["id"]})
    return {"parent": parent["id"]}


async def _animations_done(page: Page) -> None:
    """Only the endless ones (the live indicator's pulse) still run: a steady screenshot."""
    await page.wait_for_function(
        "document.getAnimations().every((a) => a.effect.getTiming().iterations === Infinity)"
    )


async def no_reload_marker(page: Page) -> None:
    await page.evaluate("window.__sameDocument = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"


# ---- the dashboard ----------------------------------------------------------------------------


async def test_the_dashboard_shows_counts_and_runs_changing_live_without_a_reload(
    server: str, client: GraphQLClient, browser: Browser
) -> None:
    seeded = await seed(client)
    jwt = token(["ws-a", "ws-b"])
    async with guarded_page(browser, server) as guarded:
        page = guarded.page
        await page.goto(f"{server}/dashboard#token={jwt}")
        await expect_live(page)
        await expect(page.locator("#workspace-name")).to_have_text("ws-a")
        await expect_counts(page, client)
        # The token left the address bar for this tab's sessionStorage.
        assert "token=" not in page.url
        stored = await page.evaluate("sessionStorage.getItem('workflow-runs-token')")
        assert stored == jwt
        await no_reload_marker(page)

        run = await create_run(client, subjectId="wf_live_check", triggeredBy="USER")
        await expect(row(page, run["id"])).to_have_attribute("data-status", "PENDING")
        await expect(row(page, run["id"]).locator(".badge")).to_have_text("Pending")
        await expect_counts(page, client)
        await client.data(START, {"id": run["id"]})
        await expect(row(page, run["id"]).locator(".badge")).to_have_text("Running")
        await client.data(COMPLETE, {"id": run["id"]})
        await expect(row(page, run["id"]).locator(".badge")).to_have_text("Completed")
        await expect_counts(page, client)
        await assert_not_reloaded(page)

        # A run's detail: its fields, timeline and children, current as they change.
        await row(page, seeded["parent"]).locator("a.run-link").click()
        detail = page.locator("#detail")
        await expect(detail.locator("h2")).to_have_text(seeded["parent"])
        await expect(detail.locator(".timeline li")).to_have_count(2)
        await expect(detail.locator(".children li")).to_have_count(2)
        late = await create_run(
            client, subjectId="agt_summarize", triggeredBy="WORKFLOW", parentRunId=seeded["parent"]
        )
        await expect(detail.locator(f'.children li[data-run-id="{late["id"]}"]')).to_be_visible()
        await client.data(START, {"id": late["id"]})
        await expect(row(page, late["id"]).locator(".badge")).to_have_text("Running")
        await expect(
            detail.locator(f'.children li[data-run-id="{late["id"]}"] .badge')
        ).to_have_text("Running")
        await assert_not_reloaded(page)
        await page.mouse.move(0, 0)
        await _animations_done(page)
        await screenshot(page, "dashboard.png")


async def test_the_dashboard_filters_by_status_subject_and_trigger(
    server: str, client: GraphQLClient, browser: Browser
) -> None:
    await seed(client)
    async with guarded_page(browser, server) as guarded:
        page = guarded.page
        await page.goto(f"{server}/dashboard?status=RUNNING#token={token()}")
        await expect_live(page)
        await expect(page.locator("#filter-status")).to_have_value("RUNNING")
        await expect(page.locator("#runs-body tr")).to_have_count(1)
        # A run entering the filtered status appears; one leaving it goes.
        run = await create_run(client, subjectId="wf_filtered", triggeredBy="AGENT")
        await client.data(START, {"id": run["id"]})
        await expect(row(page, run["id"])).to_be_visible()
        await client.data(COMPLETE, {"id": run["id"]})
        await expect(row(page, run["id"])).to_have_count(0)

        await page.get_by_label("Status", exact=True).select_option("")
        await page.get_by_label("Subject ID").fill("wf_invoice_sync")
        await expect(page.locator("#runs-body tr")).to_have_count(2)
        await page.get_by_label("Trigger").select_option("AGENT")
        await expect(page.locator("#runs-empty")).to_be_visible()
        await page.get_by_role("button", name="Clear filters").click()
        await expect(page.locator("#runs-body tr")).to_have_count(11)
        assert "subject=" not in page.url


async def test_the_dashboard_asks_for_a_token_and_says_when_it_is_rejected(
    server: str, client: GraphQLClient, browser: Browser
) -> None:
    await create_run(client, workspace="ws-b")
    async with guarded_page(browser, server) as guarded:
        page = guarded.page
        await page.goto(f"{server}/dashboard?workspace=ws-b")
        field = page.get_by_label("Access token")
        await expect(field).to_be_visible()
        await field.fill(token(["ws-a", "ws-b"], secret="another-secret-0123456789abcdef0123"))
        await page.get_by_role("button", name="Open dashboard").click()
        await expect(page.locator("#token-error")).to_contain_text("rejected this token")
        await expect(field).to_have_attribute("aria-invalid", "true")

        good = token(["ws-a", "ws-b"])
        await field.fill(good)
        await page.get_by_role("button", name="Open dashboard").click()
        await expect_live(page)
        # The workspace named by the query parameter, not the token's first.
        await expect(page.locator("#workspace-name")).to_have_text("ws-b")
        await expect(page.get_by_test_id("count-PENDING")).to_have_text("1")
        assert await page.evaluate("sessionStorage.getItem('workflow-runs-token')") == good

        # A workspace outside the token: a clear error, no data.
        await page.goto(f"{server}/dashboard?workspace=ws-z")
        await expect(page.locator("#alert")).to_contain_text("may not read workspace “ws-z”")


# ---- a restart of the server ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Serve:
    """`workflow-runs serve` on a fixed port of this test's database, started and stopped at will.

    The page talks to it; the test's own changes go through a second server on the same
    database (the `client` fixture), which stays up while this one is down.
    """

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "serve.log"
        kept = {
            k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_RUNS_", "DATABASE"))
        }
        self.env = {
            **kept,
            "DATABASE_URL": database_url,
            "WORKFLOW_RUNS_JWT_SECRET": SECRET,
            "WORKFLOW_RUNS_DATA_DIR": str(tmp_path / "data"),
        }
        self.process: subprocess.Popen[str] | None = None

    def _spawn(self) -> subprocess.Popen[str]:
        with self.log.open("a") as out:
            return subprocess.Popen(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def _output(self) -> str:
        return self.log.read_text()

    async def start(self) -> None:
        process = self.process = self._spawn()
        async with httpx.AsyncClient(timeout=1) as http:

            async def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"serve exited early:\n{self._output()}")
                try:
                    return (await http.get(f"{self.base_url}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_for(ready, within=60, what="workflow-runs serve to become ready")

    async def stop(self) -> None:
        """SIGTERM, as a deployment restarts it; waits until it has exited."""
        process = self.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        await wait_for(lambda: process.poll() is not None, within=30, what="serve to stop")

    async def subscriptions(self) -> int:
        """Live subscriptions registered in this server's fan-out (its /metrics gauge)."""
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"{self.base_url}/metrics")).text
        found = re.search(r"^workflow_runs_subscriptions ([0-9.]+)$", text, re.MULTILINE)
        assert found, "no workflow_runs_subscriptions gauge in /metrics"
        return int(float(found[1]))

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Serve]:
    served = Serve(database_url, tmp_path)
    try:
        yield served
    finally:
        served.kill()


async def test_after_a_server_restart_the_dashboard_resumes_from_its_last_cursor(
    serve: Serve, client: GraphQLClient, browser: Browser
) -> None:
    first = await create_run(client, subjectId="wf_before_restart")
    await serve.start()
    async with guarded_page(browser, serve.base_url) as guarded:
        page = guarded.page
        await page.goto(f"{serve.base_url}/dashboard#token={token()}")
        await expect_live(page)
        await no_reload_marker(page)
        seen = await create_run(client, subjectId="wf_seen_live")
        await expect(row(page, seen["id"])).to_be_visible()
        await _until_sync(
            lambda: any(e["runId"] == seen["id"] for e in guarded.events_received()),
            "the page to receive the event of the run it shows",
        )
        await serve.stop()
        last_cursor = guarded.events_received()[-1]["cursor"]
        await expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")

        # While the page's server is down.
        await client.data(START, {"id": first["id"]})
        during = await create_run(client, subjectId="wf_while_down")
        await client.data(START, {"id": during["id"]})
        sockets_before = len(guarded.sockets)

        await serve.start()
        await expect_live(page, within_ms=RESTART_TIMEOUT_MS)
        await expect(row(page, during["id"]).locator(".badge")).to_have_text("Running")
        await expect(row(page, first["id"]).locator(".badge")).to_have_text("Running")
        # And after it is back.
        await client.data(COMPLETE, {"id": during["id"]})
        after = await create_run(client, subjectId="wf_after_restart")
        await expect(row(page, during["id"]).locator(".badge")).to_have_text("Completed")
        await expect(row(page, after["id"]).locator(".badge")).to_have_text("Pending")
        await expect_counts(page, client)
        await assert_not_reloaded(page)
        await serve.stop()

    # The page subscribed again after the last event it had seen, and got each change once.
    resumed = [
        message["payload"]["variables"]
        for socket in guarded.sockets[sockets_before:]
        for message in socket.sent
        if message["type"] == "subscribe"
    ]
    assert resumed, "the page never subscribed again"
    assert resumed[0]["after"] == last_cursor
    cursors = [e["cursor"] for e in guarded.events_received()]
    assert len(cursors) == len(set(cursors)), "an event was delivered twice"
    changes = [(e["runId"], e["status"]) for e in guarded.events_received()]
    for change in [
        (first["id"], "RUNNING"),
        (during["id"], "PENDING"),
        (during["id"], "RUNNING"),
        (during["id"], "COMPLETED"),
        (after["id"], "PENDING"),
    ]:
        assert change in changes, change


async def test_a_dashboard_whose_cursor_expired_refetches_everything(
    serve: Serve, client: GraphQLClient, browser: Browser, database_url: str
) -> None:
    first = await create_run(client, subjectId="wf_before_pruning")
    await serve.start()
    async with guarded_page(browser, serve.base_url) as guarded:
        page = guarded.page
        await page.goto(f"{serve.base_url}/dashboard#token={token()}")
        await expect_live(page)
        await no_reload_marker(page)
        seen = await create_run(client, subjectId="wf_seen_live")
        await _until_sync(
            lambda: any(e["runId"] == seen["id"] for e in guarded.events_received()),
            "the page to receive an event",
        )
        await serve.stop()

        # Changes while it is down, then every stored event goes (as past the retention).
        await client.data(START, {"id": first["id"]})
        during = await create_run(client, subjectId="wf_pruned_events")
        conn = await connect(database_url)
        try:
            assert await prune_events(conn, timedelta(0)) == 4
        finally:
            await conn.close()

        await serve.start()
        await expect(row(page, during["id"]).locator(".badge")).to_have_text("Pending")
        await expect(row(page, first["id"]).locator(".badge")).to_have_text("Running")
        await expect_live(page)
        await expect_counts(page, client)
        # Live again, from where the refetch left off: with every event pruned there is no
        # cursor to start after, so the stream starts live once the server has subscribed.
        await _until(lambda: _equals(serve.subscriptions(), 1), "the page to subscribe again")
        await client.data(START, {"id": during["id"]})
        await expect(row(page, during["id"]).locator(".badge")).to_have_text("Running")
        await assert_not_reloaded(page)
        await serve.stop()

    refusals = [
        message["payload"][0]["extensions"]["code"]
        for socket in guarded.sockets
        for message in socket.received
        if message["type"] == "error"
    ]
    assert refusals == ["CURSOR_EXPIRED"]


# ---- GraphiQL ---------------------------------------------------------------------------------


async def _editor_values(page: Page) -> list[str]:
    values: list[str] = await page.evaluate(
        "[...document.querySelectorAll('.CodeMirror')].map((el) => el.CodeMirror.getValue())"
    )
    return values


async def _run_in_graphiql(page: Page, operation: str) -> None:
    """Types `operation` into the query editor and presses the run button."""
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(operation)
    # GraphiQL reads the operation name from the editor 100 ms after a change; a person never
    # clicks that fast, a test does.
    name = re.search(r"^(?:query|subscription|mutation) (\w+)", operation, re.MULTILINE)
    assert name is not None
    await page.wait_for_function(
        "(name) => document.querySelector('.graphiql-query-editor .CodeMirror')"
        ".CodeMirror.operationName === name",
        arg=name[1],
    )
    await page.locator(".graphiql-execute-button").click()


async def test_graphiql_runs_a_query_and_a_subscription_from_the_app_alone(
    settings: Settings, browser: Browser
) -> None:
    dev_token = token(["ws-a"])
    # Dev mode: the server puts a token into the page, and GraphiQL prefills its headers.
    app = create_app(replace(settings, dev_token=dev_token))
    async with running(app) as base_url, guarded_page(browser, base_url) as guarded:
        client = GraphQLClient(base_url, token())
        run = await create_run(client, subjectId="wf_graphiql")
        page = guarded.page

        await page.goto(f"{base_url}/graphql")
        await expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible()
        headers = json.dumps({"Authorization": f"Bearer {dev_token}"}, indent=2)
        await _until(lambda: _has(page, headers), "the headers pane to hold the dev token")

        await _run_in_graphiql(
            page,
            'query Runs {\n  workflowRuns(workspaceId: "ws-a") {\n    totalCount\n'
            "    nodes {\n      id\n      subjectId\n      status\n      createdAt\n    }\n  }\n}",
        )
        response = page.locator(".graphiql-response")
        await expect(response).to_contain_text(run["id"])
        await expect(response).to_contain_text('"totalCount": 1')
        await page.get_by_role("button", name="Show Documentation Explorer").click()
        await expect(page.locator(".graphiql-doc-explorer")).to_contain_text("WorkflowRun")
        await page.mouse.move(0, 0)
        await screenshot(page, "graphiql.png")

        events = await client.data(EVENTS, {"id": run["id"]})
        created = events["workflowRun"]["events"][0]["cursor"]
        await _run_in_graphiql(
            page,
            "subscription Watch {\n  workflowRunStatusChanged(\n"
            f'    workspaceId: "ws-a", runId: "{run["id"]}", after: "{created}"\n'
            "  ) { runId previousStatus status }\n}",
        )
        await client.data(START, {"id": run["id"]})
        await expect(response).to_contain_text('"status": "RUNNING"')
        await expect(response).to_contain_text('"previousStatus": "PENDING"')
        # The subscription authenticated with the Headers pane, over this server's WebSocket.
        inits = [m for s in guarded.sockets for m in s.sent if m["type"] == "connection_init"]
        assert inits == [
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {dev_token}"}}
        ]
        await client.aclose()


async def _has(page: Page, text: str) -> bool:
    return text in await _editor_values(page)


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    await wait_for(condition, within=UI_TIMEOUT_MS / 1000, what=what)


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _until_sync(condition: Callable[[], bool], what: str) -> None:
    await wait_for(condition, within=UI_TIMEOUT_MS / 1000, what=what)


def test_pages_carry_the_config_marker_the_server_replaces() -> None:
    static = Path(__file__).parent.parent / "server" / "static"
    marker = 'window.WORKFLOW_RUNS = {"token": null};'
    for page in ("graphiql", "dashboard"):
        assert marker in (static / page / "index.html").read_text(), page


async def test_pages_load_nothing_but_the_apps_own_files(server: str) -> None:
    """No CDN: every script, stylesheet and link of the pages points into the app."""
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        for path in ("/graphql", "/dashboard"):
            html = (await http.get(path, headers={"Accept": "text/html"})).text
            targets = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert targets
            for target in targets:
                assert "//" not in target or target.startswith("data:"), target
                if target.startswith("static/"):
                    assert (await http.get(f"/{target}")).status_code == 200, target
