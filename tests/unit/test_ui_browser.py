"""The /ui inspector in a real headless Chromium (Debian's `chromium`, driven by Playwright; .ci/run
installs both), against a live server on loopback with API keys. Screenshots of every page go to
test-artifacts/ui/ (ARAG_TEST_ARTIFACTS overrides)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from adaptive_rag.api.app import create_app
from adaptive_rag.decisions import SQLiteDecisionStore
from adaptive_rag.models.panel import Models
from adaptive_rag.testing import make_engine
from adaptive_rag.settings import Settings
from adaptive_rag.types import SourceDocument
from adaptive_rag.usage import Prices
from adaptive_rag.ui.views import number
from ingest.pipeline import Ingestor
from tests.unit.helpers import live as live_server
from adaptive_rag.testing import FakeEmbedder, FakeLM

REPO = Path(__file__).resolve().parents[2]
ROOT, ALICE, BOB = "root-key-0123456789ab", "alice-key-0123456789", "bob-key-0123456789ab"
ARTIFACTS = Path(os.environ.get("ARAG_TEST_ARTIFACTS", REPO / "test-artifacts")) / "ui"


def chromium_path() -> str:
    found = os.environ.get("ARAG_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no Chromium found: install Debian's chromium package (apt-get install chromium; .ci/run does), "
                    "or set ARAG_TEST_CHROMIUM to a Chromium binary")
    return found


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A keyed server with decisions by alice and bob, on a free loopback port, in this process."""
    tmp = tmp_path_factory.mktemp("ui")
    settings = Settings(data_dir=tmp / "data", chunk_size=40, chunk_overlap=5,
                        api_keys=f"root:admin:{ROOT},alice:query:{ALICE},bob:query:{BOB}",
                        eval_results_dir=REPO / "eval" / "results", access_log=False)
    embedder = FakeEmbedder()
    from adaptive_rag.store.edge import EdgeStore

    store = EdgeStore(settings.collections_dir)
    Ingestor(settings, store, embedder).run("kb", [
        SourceDocument("otters", "Sea otters hold hands while they sleep.", title="Otters"),
        SourceDocument("rivers", "The St. Johns River runs alongside Jacksonville.", title="Rivers")])
    reader = FakeLM("reader", facts={"otters": "hold hands", "river": "St. Johns River"})
    engine = make_engine(settings, store, embedder, Models(reader, reader, {"reader": Prices(0.5, 1.5)}),
                    SQLiteDecisionStore(tmp / "decisions.sqlite"))
    asked = []
    for owner, query, policy in [("alice", "What do otters do while asleep?", "self_route"),
                                 ("alice", "What river runs alongside Jacksonville?", "always_rag"),
                                 ("bob", "Who painted the Harrowmere glass factory?", "self_route"),
                                 ("bob", "What is the capital of France?", "closed_book"),
                                 ("alice", "Which otters hold hands?", "probe")]:
        asked.append(engine.answer("kb", query, policy=policy, owner=owner, queued_ms=3.0))
    with live_server(create_app(settings, engine=engine)) as url:
        yield {"url": url, "engine": engine, "asked": asked}
    store.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(browser, live, key):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live['url']}/ui/decisions")
    assert page.url.startswith(f"{live['url']}/ui/login")  # no key, no data: the sign-in page
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live['url']}/ui/decisions")
    return context, page


def test_list_filter_and_one_decision_match_the_json_record(browser, live):
    context, page = sign_in(browser, live, ROOT)
    rows = page.locator("table.decisions tbody tr")
    assert rows.count() == 5  # the admin sees every decision
    shot(page, "decisions")
    page.get_by_label("Route").select_option("rag")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    expected = [d for d in live["asked"] if d.route == "rag"]
    assert rows.count() == len(expected) > 0
    page.get_by_label("Question contains").fill("ASLEEP")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert rows.count() == 1
    page.get_by_role("link", name="What do otters do while asleep?").click()
    page.wait_for_url("**/ui/decisions/*")
    decision_id = page.url.rsplit("/", 1)[1]
    record = live["engine"].decision_store.get(decision_id)
    assert page.locator("#route").inner_text() == record["route"]
    assert page.locator(".answer").inner_text() == record["answer"]
    stages = page.locator("li.stage")
    assert [stages.nth(i).get_attribute("data-stage") for i in range(stages.count())] == [s["name"] for s in record["stages"]]
    shown = 0
    for i, stage in enumerate(record["stages"]):
        for name, value in stage["thresholds"].items():
            row = stages.nth(i).locator(f'tr.comparison[data-threshold="{name}"]')
            assert row.locator(".threshold-value").inner_text() == number(value)
            from adaptive_rag.query.policies import THRESHOLD_SIGNALS

            signal = THRESHOLD_SIGNALS[name][0]
            assert row.locator(".signal-value").inner_text() == number(stage["signals"][signal])
            went = ">=" if stage["signals"][signal] >= value else "<"
            assert row.locator(".relation").inner_text() == f"{signal} {went} {name}"
            shown += 1
        if stages.nth(i).locator("details summary").count():
            stages.nth(i).locator("details summary").click()  # the signals are folded away
        for key, value in stage["signals"].items():
            if not isinstance(value, (dict, list)):
                cell = stages.nth(i).locator(f'tr[data-signal="{key}"] td')
                assert cell.inner_text() == number(value), key
    assert shown >= 1  # the self_route/refusal comparison at least
    shot(page, "decision")
    context.close()


def test_feedback_sent_from_the_page_is_stored(browser, live):
    context, page = sign_in(browser, live, ROOT)
    target = live["asked"][0]
    page.goto(f"{live['url']}/ui/decisions/{target.id}")
    page.get_by_label("Wrong").check()
    page.get_by_label("Comment (optional)").fill("otters sleep holding paws")
    page.get_by_role("button", name="Send feedback").click()
    page.wait_for_url(f"**/ui/decisions/{target.id}?sent=1")
    assert "stored" in page.get_by_role("status").inner_text()
    assert live["engine"].decision_store.feedback_for(target.id)["correct"] is False
    assert "otters sleep holding paws" in page.locator("#feedback-given").inner_text()
    context.close()


def test_without_a_key_there_is_no_data_and_a_query_key_sees_its_own(browser, live):
    context = browser.new_context()
    page = context.new_page()
    for path in ("/ui/decisions", f"/ui/decisions/{live['asked'][0].id}", "/ui/overview", "/ui/evaluations"):
        page.goto(live["url"] + path)
        assert "/ui/login" in page.url
        assert "otters" not in page.content().lower() and "Jacksonville" not in page.content()
    page.get_by_label("API key").fill("not-a-key-0123456789")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    context.close()
    context, page = sign_in(browser, live, BOB)
    questions = page.locator("table.decisions tbody tr td:nth-child(2) a").all_inner_texts()
    assert sorted(questions) == sorted(d.query for d in live["asked"] if d.owner == "bob")
    page.goto(f"{live['url']}/ui/decisions/{live['asked'][0].id}")  # alice's
    assert "otters" not in page.content().lower()
    context.close()


def test_overview_and_evaluations_pages(browser, live):
    context, page = sign_in(browser, live, ROOT)
    page.goto(f"{live['url']}/ui/overview")
    routes = {r.get_attribute("data-route"): r for r in page.locator("tr[data-route]").all()}
    expected = {d.route for d in live["asked"]}
    assert set(routes) == expected
    shot(page, "overview")
    page.goto(f"{live['url']}/ui/evaluations")
    page.get_by_role("link", name="mixed-final").click()
    page.wait_for_url("**/ui/evaluations/mixed-final")
    assert page.locator("img.plot").evaluate("img => img.naturalWidth") > 0
    assert page.locator("table").count() >= 1
    shot(page, "evaluation")
    context.close()


def test_keyboard_and_labels(browser, live):
    context, page = sign_in(browser, live, ROOT)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.name)""")
    assert unlabelled == []
    page.keyboard.press("Enter")  # the skip link moves focus into the main content
    for _ in range(3):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    context.close()
