"""The lesson lands in the room (issue 24): every page at 1366×768, at 1366×768 in projector mode and on a 390×844
phone, in a real chromium, checked for what a class sees.

- no two elements' boxes overlap (a 448 px image over the chart beside it, clipped controls);
- nothing is wider than its column (formulas, images, charts, buttons);
- the punchline (the target beside the top eigenvector, and the verdict) is wholly inside the first screen on Home
  and Eigenvectors;
- at 1366×768 a page shows at most 250 visible words (tokens with a letter; closed expanders, formulas and code do
  not count).

One server and one chromium for the module; each page is opened by its address. Screenshots of every first screen
go to artifacts/layout/ (printed at the end).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.browser import ROOT, launch_chromium, require_chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("LAYOUT_DIR", ROOT / "artifacts" / "layout"))
PAGES = ("", "label", "train", "tensor", "eigenvectors", "explain", "truncation", "class_board")
PUNCHLINE_PAGES = ("", "eigenvectors")
MODES = {  # name: (viewport, query)
    "desk": ({"width": 1366, "height": 768}, ""),
    "projector": ({"width": 1366, "height": 768}, "?projector=true"),
    "phone": ({"width": 390, "height": 844}, ""),
}
MAX_WORDS = 250

# Every problem on the page now, as strings (empty: the layout holds). Boxes are compared in page coordinates.
PROBLEMS_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const visible = el => {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    for (let e = el; e && e !== main; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden') return false;
    }
    return !el.closest('details:not([open])');
  };
  const name = el => (el.getAttribute('data-testid') || el.tagName) + ' "' +
      (el.innerText || el.getAttribute('alt') || '').trim().slice(0, 50).replace(/\\n/g, ' ') + '"';
  const problems = [];
  // 1. wider than its column: each element against its nearest column (or the main block)
  const wide = main.querySelectorAll('.katex, [data-testid="stImage"] img, [data-testid="stVegaLiteChart"], '
      + 'button, [data-testid="stMarkdownContainer"], [data-testid="stHeading"], [data-testid="stMetric"], '
      + '[data-testid="stSlider"], [data-testid="stButtonGroup"], [data-testid="stPageLink"]');
  for (const el of wide) {
    if (!visible(el)) continue;
    const column = el.closest('[data-testid="stColumn"], [data-testid="stMainBlockContainer"]');
    const c = column.getBoundingClientRect(), r = el.getBoundingClientRect();
    const pad = parseFloat(getComputedStyle(column).paddingLeft) || 0;
    if (r.right > c.right + 5 || r.left < c.left - 5)
      problems.push(`wider than its column: ${name(el)} ${Math.round(r.left)}..${Math.round(r.right)} px in `
          + `${Math.round(c.left)}..${Math.round(c.right)} px`);
  }
  // 2. overlapping boxes: the leaf element containers (no element container inside), pairwise
  const leaves = [...main.querySelectorAll('[data-testid="stElementContainer"]')]
      .filter(el => visible(el) && !el.querySelector('[data-testid="stElementContainer"]'));
  const boxes = leaves.map(el => [el, el.getBoundingClientRect()]);
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, p] = boxes[i], [b, q] = boxes[j];
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 2 && h > 2) problems.push(`overlap ${Math.round(w)}×${Math.round(h)} px: ${name(a)} and ${name(b)}`);
  }
  return problems;
}"""
PUNCHLINE_JS = """() => {
  const box = document.querySelector('[class*="st-key-punchline_"]');
  if (!box) return null;
  const r = box.getBoundingClientRect();
  return [r.top, r.bottom, window.innerHeight];
}"""
WORDS_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  let words = 0, node;
  while ((node = walker.nextNode())) {
    const el = node.parentElement;
    if (!el || el.closest('details:not([open]), .katex, code, pre, style, script')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    words += node.textContent.split(/\\s+/).filter(w => /[A-Za-zÀ-ÿ]/.test(w)).length;
  }
  return words;
}"""
SETTLED_JS = """() => [...document.querySelectorAll('[data-testid="stImage"] img')].every(i => i.complete)
    && !document.querySelector('[data-testid="stSkeleton"]')"""


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(SHOTS / "streamlit.log") as (url, _), sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield url, chromium
        chromium.close()
    print(f"\nlayout screenshots: {SHOTS}")


def open_page(page, url: str, mode: str, path: str) -> None:
    """Open the page `path` by its address in `mode`, and wait until it has drawn (its title, images and charts)."""
    page.goto(f"{url}/{path}{MODES[mode][1]}")
    wait_idle(page)
    page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=60_000)
    wait_idle(page)
    page.wait_for_function(SETTLED_JS, timeout=60_000)
    page.wait_for_timeout(300)  # Vega lays its charts out after their element mounts


@pytest.mark.parametrize("mode", list(MODES))
def test_every_page_holds_its_layout(browser, mode):
    url, chromium = browser
    context = chromium.new_context(viewport=MODES[mode][0])
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        for path in PAGES:
            open_page(page, url, mode, path)
            page.screenshot(path=SHOTS / f"{mode}_{path or 'home'}.png")
            problems = page.evaluate(PROBLEMS_JS)
            if path in PUNCHLINE_PAGES:
                box = page.evaluate(PUNCHLINE_JS)
                if box is None:
                    problems.append("no punchline")
                elif mode != "phone" and not (box[0] >= 0 and box[1] <= box[2]):
                    problems.append(f"punchline outside the first screen: {box[0]:.0f}..{box[1]:.0f} px of {box[2]}")
            if mode == "desk":
                words = page.evaluate(WORDS_JS)
                print(f"{path or 'home'}: {words} visible words")
                if words > MAX_WORDS:
                    problems.append(f"{words} visible words (at most {MAX_WORDS})")
            if problems:
                found[path or "home"] = problems
    finally:
        context.close()
    assert not found, "\n".join(f"{page} ({mode}): {p}" for page, problems in found.items() for p in problems)


def test_on_a_phone_the_sidebar_closes_after_navigation(browser):
    """The sidebar covers 300 of a phone's 390 px: after a tap on a page link in it, the page shows."""
    url, chromium = browser
    context = chromium.new_context(viewport=MODES["phone"][0])
    page = context.new_page()
    try:
        open_page(page, url, "phone", "")
        sidebar = page.locator('[data-testid="stSidebar"]')
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        page.wait_for_function(OPEN_JS, arg=True)
        sidebar.locator('[data-testid="stSidebarNav"] a', has_text="1 · Label").click()
        page.locator('[data-testid="stMain"] h1', has_text="Label").wait_for(timeout=60_000)
        page.wait_for_function(OPEN_JS, arg=False, timeout=10_000)  # closed within 10 s, or the test fails here
    finally:
        context.close()


OPEN_JS = """(open) => {
  const r = document.querySelector('[data-testid="stSidebar"]').getBoundingClientRect();
  return (r.right > 0) === open;
}"""
