"""Real headless Chromium against Stride served by uvicorn with the real model, driven the way a person would:
the chat page at "/", and the widget embedded on a page from another origin (allowed, and not allowed)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import expect

from ingest.settings import Settings
from service.api.app import create_app
from service.feedback.store import FILENAME
from tests.browser_support import SCREENSHOTS, host_page, serve_app, serve_pages

PROTEIN = "I weigh 70 kg. How much protein do I need each day to build muscle?"
PROTEIN_RANGE = re.compile(r"112\s*[–-]\s*154\s*g")
VIEWPORTS = [pytest.param((1280, 800), id="1280x800"), pytest.param((360, 740), id="360x740")]
BUBBLE = "Ask Stride about running muscles"
QUESTION_BOX = "Your question for Stride"
ANSWER_TIMEOUT_MS = 10_000  # "within seconds"; answers take well under one on the real model


@dataclass
class Site:
    url: str  # Stride itself
    allowed: str  # another origin, in cors_origins
    refused: str  # yet another origin, not in cors_origins
    app: FastAPI

    @property
    def store_path(self) -> Path:
        return self.app.state.stride.settings.data_dir / FILENAME

    def rows(self, sql: str, *args: object) -> list[sqlite3.Row]:
        """Read the feedback SQLite file directly, as an analyst would."""
        with sqlite3.connect(self.store_path) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def site(real_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # A private copy of the real index, so this module's query log and feedback stay out of the shared one.
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    shutil.copytree(real_settings.data_dir, data_dir, symlinks=True, ignore=shutil.ignore_patterns(f"{FILENAME}*"))
    allowed_pages: dict[str, str] = {}
    refused_pages: dict[str, str] = {}
    with serve_pages(allowed_pages) as allowed, serve_pages(refused_pages) as refused:
        # Every page here asks from one address: a limit above this module's questions, so none is refused.
        settings = real_settings.model_copy(update={"cors_origins": [allowed], "data_dir": data_dir,
                                                    "rate_limit_chat": "100/minute"})
        app = create_app(settings)
        with serve_app(app) as url:
            allowed_pages["/"] = host_page(url)
            refused_pages["/"] = host_page(url, title="Some Other Site")
            yield Site(url, allowed, refused, app)


@pytest.fixture
def open_page(chromium):
    """``open_page(url, (w, h), console=None, **context_options)``: a fresh context; fails the test on any
    uncaught JS error. Pass a list as ``console`` to collect console errors (CSP violations, failed loads)."""
    contexts, errors = [], []

    def _open(url: str, viewport: tuple[int, int] = (1280, 800), console: list[str] | None = None, **kw: object):
        ctx = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **kw)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        if console is not None:
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(url)
        return page

    yield _open
    for ctx in contexts:
        ctx.close()
    assert errors == [], f"uncaught JavaScript errors: {errors}"


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def ask(page, question: str) -> None:
    box = page.get_by_role("textbox", name=QUESTION_BOX)
    box.fill(question)
    box.press("Enter")


def finished(page, n: int) -> None:
    """Wait until ``n`` answers have finished streaming."""
    expect(page.locator(".answer[aria-busy='false']")).to_have_count(n, timeout=ANSWER_TIMEOUT_MS)


def answers(page):
    return page.locator("article.msg--bot")


# --- the chat page -----------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_bar_protein_answer_with_a_citation_to_open(site: Site, open_page, viewport) -> None:
    """The bar: open /, type the question, press Enter, see 112–154 g with a citation one can open."""
    console: list[str] = []
    page = open_page(site.url + "/", viewport, console=console)
    expect(page.get_by_role("heading", name="Stride", level=1)).to_be_visible()
    started = time.monotonic()
    ask(page, PROTEIN)
    answer = answers(page).first
    expect(answer.locator(".answer-text")).to_contain_text(PROTEIN_RANGE, timeout=ANSWER_TIMEOUT_MS)
    assert time.monotonic() - started < 10

    marker = answer.get_by_role("button", name=re.compile(r"^Source 1: Can Runners Build Muscle\?")).first
    expect(marker).to_be_visible()
    marker.click()
    card = answer.locator(".cite-card")
    expect(card).to_be_visible()
    expect(card.locator(".cite-quote")).to_contain_text(PROTEIN_RANGE)
    expect(card.locator(".cite-title")).to_have_text("Can Runners Build Muscle?")
    expect(card.locator(".cite-section")).to_have_text("FAQ: Can Runners Build Muscle?")
    expect(marker).to_have_attribute("aria-expanded", "true")
    sources = answer.locator(".sources")
    expect(sources.get_by_role("heading", name="Sources")).to_be_visible()
    # One entry per cited passage, in marker order; the first is the FAQ quoted above.
    expect(sources.locator("li")).to_have_count(answer.locator("button.cite").evaluate_all(
        "els => new Set(els.map(e => e.textContent.trim())).size"))
    expect(sources.locator("li").first).to_contain_text("Can Runners Build Muscle?")
    # Fits a phone: nothing wider than the viewport, the composer on screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
    expect(page.get_by_role("button", name="Send question")).to_be_in_viewport()
    shot(page, f"page-{viewport[0]}x{viewport[1]}")
    assert console == []  # no CSP violations, no failed loads


def test_follow_up_sends_history_and_thumbs_up_is_stored(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    page.get_by_role("button", name="Which muscles does running work?").click()
    finished(page, 1)
    first_answer = site.rows("SELECT answer FROM queries WHERE question = ? ORDER BY ts DESC LIMIT 1",
                             "Which muscles does running work?")[0]["answer"]

    with page.expect_request(lambda r: r.url.endswith("/chat/stream")) as req:
        ask(page, "How do I strengthen them?")
    assert json.loads(req.value.post_data)["history"] == [
        {"role": "user", "content": "Which muscles does running work?"},
        {"role": "assistant", "content": first_answer},
    ]
    finished(page, 2)
    second = answers(page).nth(1)
    expect(second.locator("button.cite").first).to_be_visible()

    second.get_by_role("button", name="Helpful answer", exact=True).click()
    expect(second.get_by_role("button", name="Helpful answer", exact=True)).to_have_attribute("aria-pressed", "true")
    second.get_by_role("textbox", name="Add a comment (optional)").fill("Good list of exercises for my group")
    second.get_by_role("button", name="Send comment").click()
    expect(second.locator(".feedback-status")).to_have_text("Thanks, comment saved.")

    [row] = site.rows("SELECT f.*, q.provenance_json AS qprov FROM feedback f JOIN queries q ON q.id = f.query_id "
                      "WHERE f.question = ? ORDER BY f.ts DESC LIMIT 1", "How do I strengthen them?")
    assert row["rating"] == 1 and row["comment"] == "Good list of exercises for my group"
    assert json.loads(row["citations_json"]) and "[1]" in row["answer"]
    provenance = json.loads(row["provenance_json"])
    assert provenance["index_version"] and provenance["query"]["follow_up_of"] == "Which muscles does running work?"


def test_decline_is_clear_and_friendly(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    ask(page, "What's the capital of France?")
    finished(page, 1)
    msg = answers(page).first
    expect(msg).to_have_class(re.compile("msg--declined"))
    expect(msg.locator(".declined-title")).to_have_text("Not covered by the articles")
    expect(msg).to_contain_text("can't answer it from them")
    expect(msg.locator("button.cite")).to_have_count(0)
    expect(msg.locator(".sources")).to_be_hidden()
    expect(msg.get_by_role("button", name="Copy answer with sources")).to_be_hidden()
    expect(msg.get_by_role("button", name="Not helpful answer", exact=True)).to_be_visible()


def test_a_decline_offers_the_closest_covered_topics_as_questions(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    ask(page, "Do compression socks help my calves recover after a run?")
    finished(page, 1)
    declined = answers(page).first
    topics = declined.locator("ul.suggestions button")
    expect(topics.first).to_be_visible()
    assert 1 <= topics.count() <= 3
    name = topics.first.inner_text()
    shot(page, "decline-suggestions")
    topics.first.click()
    finished(page, 2)
    expect(page.locator(".msg--user").last).to_contain_text(f"What do the articles say about {name}?")
    expect(answers(page).nth(1).locator("button.cite").first).to_be_visible()


def test_passages_from_one_section_share_one_source_entry(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    ask(page, "Which muscles make up the hip flexors, and what is their job in the running stride?")
    finished(page, 1)
    answer = answers(page).first
    numbers = answer.locator(".source-list .source-ns button.source-n")
    assert numbers.count() >= 2, "expected several passages from the Hip Flexors section"
    expect(answer.locator(".source-list li", has_text="Hip Flexors")).to_have_count(1)
    numbers.nth(1).click()
    expect(answer.locator(".cite-card")).to_be_visible()
    shot(page, "sources-grouped")


def test_a_list_answer_shows_its_lead_in_then_one_item_per_line(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    ask(page, "Which muscles does running work?")
    finished(page, 1)
    # innerText keeps only the line breaks the page shows, so this is what a reader sees, wrapping aside
    lines = [line.strip() for line in answers(page).first.locator(".answer-text").inner_text().split("\n")]
    lead = lines.index("Here's a quick overview of the primary muscle groups involved:")
    groups = [line.split(" (")[0] for line in lines[lead + 1 : lead + 8]]
    assert groups == ["- Hip flexors", "- Quadriceps", "- Hamstrings", "- Glutes", "- Calves", "- Core",
                      "- Upper body muscles"], lines
    shot(page, "list-answer")


def test_copy_answer_with_sources_gives_plain_text_with_numbered_quotes(site: Site, open_page) -> None:
    page = open_page(site.url + "/", permissions=["clipboard-read", "clipboard-write"])
    ask(page, PROTEIN)
    finished(page, 1)
    page.get_by_role("button", name="Copy answer with sources").click()
    expect(page.locator("button.copy")).to_have_text("Copied")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.startswith(f"Q: {PROTEIN}\n\n")
    assert PROTEIN_RANGE.search(text) and "[1]" in text
    first, *_ = text.split("\nSources:\n", 1)[1].splitlines()
    # The manifest names this article's publisher: the copy does too.
    assert re.match(r"\[1\] “[^”]*112–154[^”]*” — Can Runners Build Muscle\? \(SportCoaching\), "
                    r"FAQ: Can Runners Build Muscle\?$", first)


def _focused(page) -> dict:
    """The element focused inside the widget's shadow root: its label, text and focus outline."""
    return page.evaluate("""() => {
        const host = document.querySelector('stride-chat');
        const el = host && host.shadowRoot.activeElement;
        if (!el) return {};
        const s = getComputedStyle(el);
        return {label: el.getAttribute('aria-label') || '', text: el.textContent.trim(), cls: el.className,
                outline: s.outlineStyle + ' ' + s.outlineWidth};
    }""")


def _tab_to(page, predicate, limit: int = 30) -> dict:
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = _focused(page)
        if predicate(f):
            return f
    raise AssertionError(f"never focused; last: {_focused(page)}")


def test_keyboard_only_with_screen_reader_hooks(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    starter = _tab_to(page, lambda f: f.get("text") == PROTEIN)
    assert starter["outline"] == "solid 3px"  # focus is visible
    page.keyboard.press("Enter")
    finished(page, 1)

    answer = answers(page).first
    live = answer.locator(".answer")
    expect(live).to_have_attribute("aria-live", "polite")
    marker = _tab_to(page, lambda f: "cite" in f.get("cls", "").split())
    assert marker["label"].startswith("Source 1: Can Runners Build Muscle?") and marker["outline"] == "solid 3px"
    card = answer.locator(".cite-card")
    expect(card).to_be_visible()  # focusing a marker shows its passage
    expect(card.locator(".cite-quote")).to_contain_text(PROTEIN_RANGE)
    page.keyboard.press("Escape")
    expect(card).to_be_hidden()

    expect(page.get_by_role("status")).to_have_count(1)
    unnamed = page.evaluate("""() => [...document.querySelector('stride-chat').shadowRoot.querySelectorAll('button')]
        .filter(b => !(b.getAttribute('aria-label') || b.textContent).trim()).map(b => b.outerHTML)""")
    assert unnamed == []


def test_network_error_shows_retry_that_recovers(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    page.route("**/chat/stream", lambda route: route.abort("internetdisconnected"))
    ask(page, PROTEIN)
    alert = answers(page).first.get_by_role("alert")
    expect(alert).to_contain_text("Couldn't reach Stride")
    expect(answers(page).first.locator(".answer-text")).to_have_count(0)
    page.unroute("**/chat/stream")
    answers(page).first.get_by_role("button", name=f"Retry: {PROTEIN}").click()
    expect(answers(page).first.locator(".answer-text")).to_contain_text(PROTEIN_RANGE, timeout=ANSWER_TIMEOUT_MS)
    expect(alert).to_be_hidden()


def test_a_rate_limited_reader_is_told_when_to_try_again(site: Site, open_page) -> None:
    page = open_page(site.url + "/")
    page.route("**/chat/stream", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "42"}, content_type="application/json",
        body='{"detail": "too many chat requests from this client (limit 20 per 1 minute); retry in 42 s"}'))
    ask(page, PROTEIN)
    alert = answers(page).first.get_by_role("alert")
    expect(alert).to_contain_text("more questions than Stride takes from one reader at a time")
    expect(alert).to_contain_text("Try again in 42 s")
    page.unroute("**/chat/stream")
    answers(page).first.get_by_role("button", name=f"Retry: {PROTEIN}").click()
    expect(answers(page).first.locator(".answer-text")).to_contain_text(PROTEIN_RANGE, timeout=ANSWER_TIMEOUT_MS)


@pytest.mark.parametrize(("path", "operation"), [("/docs", ".opblock-summary-path"), ("/redoc", "h2")])
def test_api_docs_render_with_every_outside_request_blocked(site: Site, open_page, path: str, operation: str) -> None:
    outside: list[str] = []

    def only_stride(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(site.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page = open_page("about:blank")
    page.context.route("**/*", only_stride)
    page.goto(site.url + path)
    # Swagger UI lists operations by path; ReDoc heads each with its summary.
    first, second = ("/v1/chat/completions", "/chat/stream") if path == "/docs" else ("Chat Completions", "Chat Stream")
    expect(page.locator(operation).filter(has_text=first).first).to_be_visible(timeout=15_000)
    expect(page.locator(operation).filter(has_text=second).first).to_be_visible()
    shot(page, f"docs-{path.strip('/')}")
    assert outside == []


def test_streaming_never_shifts_the_answer_upwards(site: Site, open_page) -> None:
    """No layout jump: the answer box only grows while tokens arrive, and markers keep their size."""
    page = open_page(site.url + "/")
    page.evaluate("""() => {
        window.__heights = [];
        const root = document.querySelector('stride-chat').shadowRoot;
        new MutationObserver(() => {
            const a = root.querySelector('article.msg--bot');
            if (a) window.__heights.push(a.getBoundingClientRect().height);
        }).observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
    }""")
    ask(page, "How often should runners do strength training?")
    finished(page, 1)
    heights = page.evaluate("window.__heights")
    assert len(heights) >= 2 and heights[0] >= 100  # room reserved before the first word
    assert all(b >= a - 0.5 for a, b in itertools.pairwise(heights)), heights
    sizes = page.evaluate("""() => {
        const p = document.createElement('span'); p.className = 'cite cite--pending'; p.textContent = '1';
        const root = document.querySelector('stride-chat').shadowRoot;
        const b = root.querySelector('button.cite');
        b.after(p);
        const r = [p.getBoundingClientRect(), b.getBoundingClientRect()].map(x => [x.width, x.height]);
        p.remove();
        return r;
    }""")
    assert sizes[0] == sizes[1]


# --- the widget on other sites -----------------------------------------------------------------

@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_widget_works_on_an_allowed_origin(site: Site, open_page, viewport) -> None:
    page = open_page(site.allowed + "/", viewport)
    host_button = page.locator("#host-button")
    before = host_button.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).fontSize]")

    bubble = page.get_by_role("button", name=BUBBLE)
    expect(bubble).to_be_visible()
    bubble.click()
    expect(bubble).to_have_attribute("aria-expanded", "true")
    dialog = page.get_by_role("dialog", name="Stride")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("textbox", name=QUESTION_BOX)).to_be_focused()
    if viewport[0] == 360:  # the panel takes the whole phone screen
        box = dialog.bounding_box()
        assert box and box["width"] == 360 and box["height"] == 740

    ask(page, PROTEIN)
    answer = answers(page).first
    expect(answer.locator(".answer-text")).to_contain_text(PROTEIN_RANGE, timeout=ANSWER_TIMEOUT_MS)
    answer.locator("button.cite").first.click()
    expect(answer.locator(".cite-quote")).to_contain_text(PROTEIN_RANGE)
    shot(page, f"widget-{viewport[0]}x{viewport[1]}")

    # Cross-origin feedback lands in the store too.
    answer.get_by_role("button", name="Helpful answer", exact=True).click()
    expect(answer.locator(".feedback-status")).to_have_text("Thanks for the feedback.")
    [row] = site.rows("SELECT rating, question FROM feedback ORDER BY ts DESC LIMIT 1")
    assert (row["rating"], row["question"]) == (1, PROTEIN)

    # Isolation both ways: the host page's loud CSS does not reach the widget, and ours leaves the host alone.
    send_bg = page.get_by_role("button", name="Send question").evaluate("b => getComputedStyle(b).backgroundColor")
    assert send_bg == "rgb(13, 92, 79)"
    font = answer.locator(".answer-text").evaluate("e => getComputedStyle(e).fontFamily")
    assert "Georgia" not in font
    assert host_button.evaluate("b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).fontSize]") == before
    assert page.evaluate("document.querySelectorAll('style, link[rel=stylesheet]').length") == 1  # the host's own

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(bubble).to_be_focused()


def test_widget_is_refused_on_an_origin_not_allowed(site: Site, open_page) -> None:
    logged_before = site.rows("SELECT COUNT(*) AS n FROM queries")[0]["n"]
    page = open_page(site.refused + "/")
    page.get_by_role("button", name=BUBBLE).click()
    ask(page, PROTEIN)
    answer = answers(page).first
    expect(answer.get_by_role("alert")).to_contain_text("Couldn't reach Stride", timeout=ANSWER_TIMEOUT_MS)
    expect(answer.get_by_role("button", name=f"Retry: {PROTEIN}")).to_be_visible()
    expect(answer.locator(".answer-text")).to_have_count(0)
    expect(page.get_by_text(PROTEIN_RANGE)).to_have_count(0)
    # The preflight is refused, so the question never reached the engine.
    assert site.rows("SELECT COUNT(*) AS n FROM queries")[0]["n"] == logged_before
    shot(page, "widget-refused-1280x800")
