"""The analyst console driven in headless Chromium (Debian's chromium + chromium-driver, through Selenium with the
driver's path given, so Selenium Manager never runs and nothing downloads a browser), against the API served over
real HTTP with DynamoDB Local and Chroma behind it.

The report is drafted once through the real pipeline with a scripted drafting model, and the chat answers with a
scripted streaming model (tests/fakes.py) through the investigator's model factory: the page still reads the
answer from the live SSE stream. Drafting a report is watched on a case of its own: a paced streaming model writes a
draft the checks refuse, then one they pass, and the page shows each stage and the narrative forming from the live
POST /report/stream. Screenshots go to test-artifacts/console-queue.png, console-case.png and console-draft.png.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudagent.agent.pipeline import Investigator, draft_and_store
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess
from fraudagent.core.models import CaseBundle
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.store import dynamo
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import ARTIFACTS, LiveServer, make_settings
from tests.fakes import ScriptedStreamModel, ScriptedToolModel, draft
from tests.receiver import role_keys

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them with apt-get)",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CASE = "C-000001"
ANSWER = "The gift card [txn:E-99812] was bought 19 minutes after the password reset [txn:E-99801] from device D-77."
WAIT_S = 60


def _bundle(case_id: str, *, priority: str, score: float, account: str = "A-4471") -> dict[str, Any]:
    doc = example()
    doc["case"] = dict(doc["case"], case_id=case_id, priority=priority, account_id=account)
    if account != "A-4471":
        doc["accounts"] = [dict(doc["accounts"][0], account_id=account, display_name=None)]
        doc["events"] = [dict(e, account_id=account, event_id=e["event_id"] + account[-2:]) for e in doc["events"]]
        doc["scores"] = [dict(s, event_id=s["event_id"] + account[-2:]) for s in doc["scores"]]
    doc["scores"] = [dict(s, score=score) for s in doc["scores"]]
    return doc


@pytest.fixture(scope="module")
def console(ddb_server: ManagedProcess, embedder: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = make_settings(ddb_server, tmp_path_factory.mktemp("console"), api_rate_limit_per_minute=0)
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
    for doc in (
        _bundle(CASE, priority="high", score=0.91),
        _bundle("C-000002", priority="low", score=0.35, account="A-5502"),
        _bundle("C-000003", priority="medium", score=0.62, account="A-5503"),
    ):
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past, scorer=None)
    # The latest report, drafted through the real pipeline (evidence, verifier, storage) by a scripted drafting model.
    findings = ["txn:E-99801", "txn:E-99812", "fact:credential_change"]
    drafter = ScriptedToolModel(script=[draft(findings=findings)])
    draft_and_store(
        Investigator(settings=settings, history=history, past_cases=past, model_factory=lambda *_a, **_k: drafter),
        CASE,
        requested_by="tests",
    )
    chat_model = ScriptedStreamModel(answers=[ANSWER])
    investigator = Investigator(
        settings=settings, history=history, past_cases=past, model_factory=lambda *_a, **_k: chat_model
    )
    keys = role_keys(history)
    keys["evaluator"] = key_store.create_key(history, name="eve evaluator", roles=["evaluator"], created_by="tests")[1]
    with LiveServer(create_app(settings, investigator)) as server:
        server.keys = keys  # type: ignore[attr-defined]
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1366,860",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=Service(executable_path=str(CHROMEDRIVER)), options=options
    )  # no Selenium Manager
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def _wait(driver: WebDriver, condition: Any, what: str) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition, message=f"timed out waiting for {what}")


def _visible(driver: WebDriver, css: str) -> Any:
    return _wait(
        driver, lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None), css
    )


def _sign_in(driver: WebDriver, base: str, key: str, path: str = "/console") -> None:
    driver.get(base + path)
    driver.execute_script("sessionStorage.clear()")
    driver.get(base + path)
    field = _visible(driver, "#signin-key")
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()


def _queue_ids(driver: WebDriver) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#queue tbody tr')].map((r) => r.dataset.caseId)"
    )


def _screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 4000)")
    driver.set_window_size(1366, max(860, int(height) + 120))
    driver.execute_script("window.scrollTo(0, 0)")
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1366, 860)
    return path


def test_a_wrong_key_gets_a_clear_message_and_the_sign_in_form_again(console: LiveServer, browser: WebDriver) -> None:
    _sign_in(browser, console.url, "fa_k0000000000_not-a-real-secret")
    notice = _visible(browser, "#notice")
    assert "not accepted" in notice.text and "Sign in again" in notice.text
    assert _visible(browser, "#signin-key") and not browser.find_element(By.ID, "app").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('fa.key')") is None  # a refused key is not kept


def test_keys_without_the_rights_see_what_their_role_allows(console: LiveServer, browser: WebDriver) -> None:
    keys = console.keys  # type: ignore[attr-defined]
    _sign_in(browser, console.url, keys["ticketing"])
    notice = _visible(browser, "#notice")
    assert "needs the analyst role" in notice.text and "ticketing" in notice.text
    assert not browser.find_element(By.ID, "app").is_displayed()

    _sign_in(browser, console.url, keys["evaluator"], path=f"/console/cases/{CASE}")
    locked = _visible(browser, "#decision-locked")
    assert "needs the analyst role" in locked.text and "evaluator" in locked.text
    assert "needs the analyst role" in _visible(browser, "#chat-locked").text
    assert not browser.find_element(By.ID, "decision-form").is_displayed()
    assert not browser.find_element(By.ID, "chat-box").is_displayed()
    _visible(browser, "#report .narrative")  # reading is allowed
    # Calling a route the role lacks anyway gets the API's 403 turned into a sentence, not a broken page.
    message = browser.execute_async_script(
        "const done = arguments[0];"
        f"FA.api('/v1/cases/{CASE}/audit').then(() => done('allowed?'), (e) => done(FA.describe(e)));"
    )
    assert "not allowed" in message and "evaluator" in message and "analyst" in message


def test_an_analyst_works_a_case_from_the_queue_to_a_decision(console: LiveServer, browser: WebDriver) -> None:
    _sign_in(browser, console.url, console.keys["analyst"])  # type: ignore[attr-defined]
    _wait(browser, lambda d: len(_queue_ids(d)) == 3, "three open cases")
    assert "analyst ana" in _visible(browser, "#who").text
    # filter by priority (the API filters), then sort the page by score (the page sorts)
    browser.find_element(By.CSS_SELECTOR, "#f-priority option[value=high]").click()
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    _wait(browser, lambda d: _queue_ids(d) == [CASE], "the high-priority filter")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    _wait(browser, lambda d: len(_queue_ids(d)) == 3, "the filter cleared")
    browser.find_element(By.CSS_SELECTOR, "#f-age option[value='-7']").click()  # the cases were opened in March 2026
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    _wait(browser, lambda d: "No open case matches" in d.find_element(By.ID, "queue-status").text, "the age filter")
    assert _queue_ids(browser) == []
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=reset]").click()
    _wait(browser, lambda d: len(_queue_ids(d)) == 3, "the filter cleared")
    browser.find_element(By.CSS_SELECTOR, "button[data-sort=score]").click()
    assert _queue_ids(browser) == [CASE, "C-000003", "C-000002"]
    assert (
        browser.find_element(By.CSS_SELECTOR, "th:has(button[data-sort=score])").get_attribute("aria-sort")
        == "descending"
    )
    _screenshot(browser, "console-queue.png")

    browser.find_element(By.LINK_TEXT, CASE).click()
    _visible(browser, "#report .narrative")
    # the timeline: an SVG with a mark for each event, the credential change and the score line
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline svg a.ev")) == 3
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline .credential") and browser.find_elements(
        By.CSS_SELECTOR, "#timeline .score-dot"
    )
    assert "llm" in browser.find_element(By.CSS_SELECTOR, "#report .path").get_attribute("class")
    marked = browser.find_element(
        By.CSS_SELECTOR, "#profile .untrusted"
    )  # the display name is marked as customer-written
    assert (
        "xX_sniper_Xx" in marked.text
        and marked.find_element(By.CSS_SELECTOR, ".untrusted-tag").text.lower() == "customer-written"
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#similar a.cite[data-cite^='case:']")

    # a citation in the report highlights its evidence item and brings it into view
    link = browser.find_element(By.CSS_SELECTOR, "#report .findings a.cite")
    cited = link.get_attribute("data-cite")
    link.click()
    item = browser.find_element(By.ID, f"ev-{cited}")
    _wait(browser, lambda d: "highlight" in item.get_attribute("class"), "the highlighted evidence")
    assert browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight", item
    )
    assert browser.switch_to.active_element == item
    assert len(browser.find_elements(By.CSS_SELECTOR, ".evidence-item.highlight")) == 1
    # by keyboard too: Enter on a focused citation moves the highlight and the focus
    other = next(
        a
        for a in browser.find_elements(By.CSS_SELECTOR, "#report .findings a.cite")
        if a.get_attribute("data-cite") != cited
    )
    browser.execute_script("arguments[0].focus()", other)
    other.send_keys(Keys.ENTER)
    moved = browser.find_element(By.ID, f"ev-{other.get_attribute('data-cite')}")
    _wait(
        browser,
        lambda d: "highlight" in moved.get_attribute("class") and "highlight" not in item.get_attribute("class"),
        "Enter on a citation",
    )
    assert browser.switch_to.active_element == moved

    # the chat streams its answer into the page; the session survives a reload
    question = browser.find_element(By.ID, "chat-input")
    question.send_keys("What happened here?")
    browser.find_element(By.ID, "chat-send").click()
    answer = _visible(browser, ".chat-assistant.done")
    assert "19 minutes after the password reset" in answer.text
    assert [a.get_attribute("data-cite") for a in answer.find_elements(By.CSS_SELECTOR, ".chat-cites a.cite")] == [
        "txn:E-99812",
        "txn:E-99801",
    ]
    _screenshot(browser, "console-case.png")
    browser.refresh()
    _wait(
        browser,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat-log .chat-msg")) == 2,
        "the chat history after a reload",
    )
    assert "What happened here?" in browser.find_element(By.CSS_SELECTOR, "#chat-log .chat-analyst").text

    # the decision closes the case, and it leaves the queue
    browser.find_element(By.CSS_SELECTOR, "input[name=disposition][value=confirmed_fraud]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=actions][value=lock_account]").click()
    browser.find_element(By.ID, "d-notes").send_keys("Reset from RO, gift card minutes later.")
    browser.find_element(By.ID, "decide").click()
    assert "Closed as confirmed fraud" in _visible(browser, "#decision-done").text
    assert "left the queue" in _visible(browser, "#notice").text
    browser.find_element(By.LINK_TEXT, "Back to the queue").click()
    _wait(browser, lambda d: sorted(_queue_ids(d)) == ["C-000002", "C-000003"], "the decided case gone from the queue")


def test_an_analyst_gives_and_changes_a_verdict_and_an_evaluator_reads_the_quality_page(
    console: LiveServer, browser: WebDriver
) -> None:
    import httpx

    analyst = console.keys["analyst"]  # type: ignore[attr-defined]
    _sign_in(browser, console.url, analyst, f"/console/cases/{CASE}")
    _visible(browser, "#verdict-box")
    _wait(browser, lambda d: "No verdict from you yet" in d.find_element(By.ID, "verdict-status").text, "no verdict")
    browser.find_element(By.CSS_SELECTOR, "#verdict-box input[name=reasons][value=too_long]").click()
    browser.find_element(By.ID, "verdict-not-useful").click()
    _wait(
        browser,
        lambda d: "Your verdict: not useful (too long)" in d.find_element(By.ID, "verdict-status").text,
        "the verdict recorded",
    )
    assert browser.find_element(By.ID, "verdict-not-useful").get_attribute("aria-pressed") == "true"
    browser.find_element(By.CSS_SELECTOR, "#verdict-box input[name=reasons][value=too_long]").click()  # untick
    browser.find_element(By.ID, "verdict-useful").click()
    _wait(browser, lambda d: "Verdict changed" in d.find_element(By.ID, "notice").text, "the verdict changed")
    assert "Your verdict: useful," in browser.find_element(By.ID, "verdict-status").text
    _screenshot(browser, "console-verdict.png")
    headers = {"Authorization": f"Bearer {analyst}"}
    report_id = httpx.get(f"{console.url}/v1/cases/{CASE}", headers=headers).json()["latest_report"]["report_id"]
    verdicts = httpx.get(f"{console.url}/v1/cases/{CASE}/reports/{report_id}/feedback", headers=headers).json()
    assert [(v["analyst"], v["useful"], v["reasons"]) for v in verdicts["items"]] == [("analyst ana", True, [])]
    browser.refresh()  # the verdict is read back from the API
    _wait(browser, lambda d: "Your verdict: useful," in d.find_element(By.ID, "verdict-status").text, "the verdict")

    # the evaluator's quality page: the figures and one server-rendered chart per figure, under the strict CSP
    _sign_in(browser, console.url, console.keys["evaluator"], "/console/quality")  # type: ignore[attr-defined]
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#q-charts figure svg")) == 6, "six charts")
    total = _visible(browser, "#q-total").text
    assert "verdicts saying useful\n100%" in total and "reports with a verdict" in total
    assert browser.find_elements(By.CSS_SELECTOR, "#q-charts svg rect.bar")  # at least one bar drawn
    browser.execute_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__csp.push(e.violatedDirective))"
    )
    browser.find_element(By.CSS_SELECTOR, "#q-by option[value=model]").click()
    browser.find_element(By.CSS_SELECTOR, "#quality-form button[type=submit]").click()
    _wait(
        browser,
        lambda d: "by model" in d.find_element(By.CSS_SELECTOR, "#q-charts svg").get_attribute("aria-label"),
        "the charts by model",
    )
    assert browser.execute_script("return window.__csp") == []  # the charts went in under the strict CSP
    _screenshot(browser, "console-quality.png")
    # an analyst is told the page is not for them
    _sign_in(browser, console.url, analyst, "/console/quality")
    assert "for evaluators and admins" in _visible(browser, "#notice").text


def test_the_console_pages_fetch_nothing_from_elsewhere(console: LiveServer) -> None:
    import re

    import httpx

    for path in ("/console", f"/console/cases/{CASE}", "/console/quality"):
        response = httpx.get(console.url + path)
        assert response.status_code == 200 and "script-src 'self'" in response.headers["content-security-policy"]
        assert not re.search(r"(src|href)=\"(https?:)?//", response.text), path
    detail = httpx.get(
        f"{console.url}/v1/cases/{CASE}", headers={"Authorization": f"Bearer {console.keys['analyst']}"}
    ).json()  # type: ignore[attr-defined]
    event = next(i for i in detail["evidence"] if i["id"] == "txn:E-99812")
    assert event["data"]["amount"] == "100.00" and event["data"]["device_id"] == "D-77"
    assert "ip" not in event["data"] and "text" not in event["data"] and event["untrusted"] == "gift for my brother"
    assert httpx.get(f"{console.url}/v1/me", headers={"Authorization": f"Bearer {console.keys['analyst']}"}).json()[
        "roles"
    ] == ["analyst"]  # type: ignore[attr-defined]


def test_the_api_docs_render_offline_under_their_csp(console: LiveServer, browser: WebDriver) -> None:
    """/docs in the browser: Swagger UI, served from the package, renders every operation of the live spec with
    no Content-Security-Policy violation and nothing fetched from elsewhere (the page names no other origin)."""
    import httpx

    spec = httpx.get(f"{console.url}/openapi.json").json()
    operations = sum(
        1 for path in spec["paths"].values() for method in path if method in ("get", "post", "put", "patch", "delete")
    )
    listener = (
        "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": listener})
    try:
        browser.get(console.url + "/docs")
        _wait(
            browser,
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == operations,
            f"{operations} operations rendered",
        )
        assert "Fraud investigation agent" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
        browser.find_elements(By.CSS_SELECTOR, ".opblock-summary")[0].click()  # expand one: more of Swagger UI runs
        _visible(browser, ".opblock-body")
        assert browser.execute_script("return window.__csp") == []
        # the listener does see violations: an inline script is one
        browser.execute_script(
            "const s = document.createElement('script'); s.textContent = '1'; document.body.append(s);"
        )
        _wait(
            browser,
            lambda d: d.execute_script("return window.__csp.length") == 1,
            "the inline script reported as a CSP violation",
        )
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})


# --- drafting a report, streamed into the page ------------------------------------------------------------------

DRAFT_CASE = "C-000009"
NARRATIVE = "A password reset from a new device in RO was followed 19 minutes later by a 100.00 USD gift card."


class PacedStreamModel(ScriptedStreamModel):
    """ScriptedStreamModel that pauses before each piece, as a model writing at a few dozen tokens a second."""

    pause_s: float = 0.0

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        for chunk in super()._stream(*args, **kwargs):
            time.sleep(self.pause_s)
            yield chunk


def _model_draft(**changes: Any) -> str:
    body = {
        "typology": "account_takeover",
        "actions": ["lock_account"],
        "confidence": "high",
        "findings": ["txn:E-99801", "txn:E-99812", "fact:credential_change"],
        "unknowns": ["holder_confirms"],
        "narrative": NARRATIVE,
    }
    return json.dumps(body | changes)


@pytest.fixture(scope="module")
def drafting_console(
    ddb_server: ManagedProcess, embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A case without a report, and a drafting model whose first draft the checks refuse (an id not in the case)."""
    settings = make_settings(ddb_server, tmp_path_factory.mktemp("drafting"), api_rate_limit_per_minute=0)
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
    load_bundle(
        history,
        CaseBundle.model_validate(_bundle(DRAFT_CASE, priority="high", score=0.91)),
        past_case_store=past,
        scorer=None,
    )
    model = PacedStreamModel(answers=[_model_draft(findings=["txn:E-00000"]), _model_draft()], pause_s=0.05)
    investigator = Investigator(
        settings=settings, history=history, past_cases=past, model_factory=lambda *_a, **_k: model
    )
    with LiveServer(create_app(settings, investigator)) as server:
        server.keys = role_keys(history)  # type: ignore[attr-defined]
        yield server


def test_drafting_a_report_shows_each_stage_as_it_streams_then_the_report(
    drafting_console: LiveServer, browser: WebDriver
) -> None:
    _sign_in(browser, drafting_console.url, drafting_console.keys["analyst"], path=f"/console/cases/{DRAFT_CASE}")  # type: ignore[attr-defined]
    assert "No report yet" in _visible(browser, "#report").text
    # every narrative the page shows while the model writes, as the page shows it
    browser.execute_script(
        "window.shown = [];"
        "new MutationObserver(() => { const n = [...document.querySelectorAll('#draft-stages .draft-narrative')].pop();"
        "  if (n && window.shown[window.shown.length - 1] !== n.textContent) window.shown.push(n.textContent); })"
        ".observe(document.getElementById('draft-stages'), {subtree: true, childList: true, characterData: true});"
    )
    browser.find_element(By.ID, "draft-report").click()
    _visible(browser, "#draft-stages .stage-report")
    stages = browser.execute_script(
        "return [...document.querySelectorAll('#draft-stages > li')].map((li) => [li.className, li.dataset.attempt ||"
        " null])"
    )
    assert stages == [
        ["stage stage-evidence", None],
        ["stage stage-drafting", "1"],
        ["stage stage-checks failed", "1"],
        ["stage stage-drafting", "2"],
        ["stage stage-checks passed", "2"],
        ["stage stage-report", None],
    ]
    assert "Evidence gathered" in browser.find_element(By.CSS_SELECTOR, "#draft-stages .stage-evidence").text
    refused = browser.find_element(By.CSS_SELECTOR, "#draft-stages .stage-checks.failed")
    assert "txn:E-00000" in refused.find_element(By.CSS_SELECTOR, ".problems").text
    # the narrative formed in front of the analyst: shorter prefixes of it first, then all of it
    shown = browser.execute_script("return window.shown")
    forming = [s for s in shown if s and NARRATIVE.startswith(s)]
    assert len(forming) >= 3 and forming[-1] == NARRATIVE and len(forming[0]) < len(NARRATIVE), shown
    second = browser.find_elements(By.CSS_SELECTOR, "#draft-stages .stage-drafting .draft-narrative")[1]
    assert second.text == NARRATIVE
    # then the report itself, as the case page renders any report, and the same one the API stored
    assert "LLM draft, retried" in _visible(browser, "#report .path").text
    assert browser.find_element(By.CSS_SELECTOR, "#report .narrative").text == NARRATIVE
    assert "Report drafted" in browser.find_element(By.ID, "case-status").text
    import httpx

    stored = httpx.get(
        f"{drafting_console.url}/v1/cases/{DRAFT_CASE}/reports",
        headers={"Authorization": f"Bearer {drafting_console.keys['analyst']}"},
    ).json()["items"]  # type: ignore[attr-defined]
    assert (
        len(stored) == 1 and stored[0]["report_id"] in browser.find_element(By.CSS_SELECTOR, "#report .versions").text
    )
    _screenshot(browser, "console-draft.png")
