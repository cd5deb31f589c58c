"""report.html in a real headless Chromium (Debian's chromium package, driven by Playwright):
the page renders its tables and every figure, sorts without a server, loads nothing from the
network, runs no injected script, and leaves a screenshot in the artifacts directory.

`make test` installs chromium; without it the test is skipped, except where
INFEROMETER_REQUIRE_BROWSER=1 (CI) makes a missing browser a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from synthetic import EVIL, Cell, full_run, noisy, write_run

from inferometer.report.write import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("INFEROMETER_ARTIFACTS",
                                Path(__file__).resolve().parent.parent / ".artifacts"))

if CHROMIUM is None or __import__("importlib").util.find_spec("playwright") is None:
    if os.environ.get("INFEROMETER_REQUIRE_BROWSER") == "1":
        pytest.fail("the browser test needs Debian's chromium and playwright (make test "
                    "installs both); INFEROMETER_REQUIRE_BROWSER=1 forbids skipping",
                    pytrace=False)
    pytest.skip("no chromium/playwright here (apt-get install chromium; "
                "pip install playwright)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, path: Path):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    events: dict[str, list[str]] = {"errors": [], "requests": [], "dialogs": []}
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("console", lambda m: m.type == "error" and events["errors"].append(m.text))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.goto((path / "report.html").as_uri())
    page.wait_for_load_state("load")
    return page, events


def test_report_renders_tables_and_figures_in_chromium(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = full_run(tmp_path / "run")
    write_report(path)
    page, events = _open(browser, path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)

    assert page.title() == "inferometer report: net"
    figures = page.eval_on_selector_all(
        "figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(figures) == 7
    assert all(ok and w > 300 and h > 200 for ok, w, h in figures), figures
    assert page.locator("table").count() >= 3  # best per variant + one per runtime
    assert "Test CPU" in page.inner_text("dl.facts")
    # nothing but the file itself and its data: images was requested
    assert all(u.startswith(("file://", "data:")) for u in events["requests"]), events
    assert events["errors"] == [], events["errors"]


def test_a_header_click_sorts_numerically(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = full_run(tmp_path / "run")
    write_report(path)
    page, _ = _open(browser, path)
    table = page.locator("table.sortable").first  # best thread count per runtime/variant
    idx = table.locator("th").all_inner_texts().index("p50 ms")
    header = table.locator("th").nth(idx)

    def column() -> list[float]:
        return [float(r.locator("td").nth(idx).inner_text())
                for r in table.locator("tbody tr").all()]

    header.click()
    asc = column()
    assert asc == sorted(asc) and len(asc) >= 4
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert column() == sorted(asc, reverse=True)


def test_injected_markup_stays_text(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "evil"
    write_run(path, [Cell("alpha", "default", 1, 1, noisy(5e6), model=EVIL)])
    write_report(path)
    page, events = _open(browser, path)
    assert events["dialogs"] == []
    assert page.locator("h1").inner_text() == f"inferometer report: {EVIL}"
    assert page.locator("h1 img, h2 img, td img").count() == 0
    assert page.locator("script").count() == 1
