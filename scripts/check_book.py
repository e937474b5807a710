"""Open every page of the built book in headless Chromium and fail on what a reader would see.

    python scripts/check_book.py                  # the most recent build (book/_build/html or _build/html)
    python scripts/check_book.py --html DIR       # another built html folder

The pages are served from DIR over http://127.0.0.1 (a free port; the server stops at the
end) and each page is opened at a 1400x1000 window. A page fails on:

- TeX left unrendered in the main column once MathJax has finished ($...$, \\(, \\begin{, ...)
  or a formula MathJax could not typeset;
- any request to a URL that is not the local server (it is blocked and reported);
- a local file that does not load (HTTP status >= 400) or an <img> that did not load;
- a traceback, warning, error, raw object repr or stderr text in a cell output;
- horizontal overflow of the main column, or a table, figure, image or formula wider than it,
  or a code block or text output that scrolls sideways;
- a JavaScript error (console error or uncaught exception).

One full-page screenshot per page goes to DIR/../screenshots/<page>.png. The script prints a
line per page and exits 1 if any page failed.

The browser is Debian's Chromium (/usr/bin/chromium, `apt-get install chromium`; another
binary with $CHROMIUM), driven by the Playwright Python package (`pip install playwright`;
`playwright install` is not needed). Without them the check is skipped with exit 0, unless
CI=true, where a missing browser fails.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDS = (ROOT / "book" / "_build" / "html", ROOT / "_build" / "html")  # make book, jupyter-book build book/
SKIP_PAGES = {"search.html", "genindex.html", "py-modindex.html"}
WINDOW = {"width": 1400, "height": 1000}
MAX_PER_KIND = 5  # findings of one kind listed per page
INSTALL = ("Install the browser with `apt-get update && apt-get install -y chromium` and the driver "
           "with `pip install playwright` (no `playwright install` needed).")

# text in a cell output that a reader should not see
OUTPUT_PROBLEMS = [
    ("traceback", re.compile(r"Traceback")),
    ("warning", re.compile(r"\b\w*Warning\b:?|\bWARNING\b|IProgress not found")),
    ("error", re.compile(r"\b\w*Error\b")),
    ("raw repr", re.compile(r"<[\w.]+(?: object)? at 0x[0-9a-fA-F]+>|<Figure size \d+x\d+ with \d+ Axes>")),
]

# Runs in the page after MathJax has finished: everything the checks need, as one JSON object.
INSPECT = r"""
async () => {
  const main = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  // images: load lazy ones, then wait (bounded) for all of them
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.race([
    Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }))),
    new Promise(r => setTimeout(r, 5000)),
  ]);
  const brokenImages = imgs.filter(i => !i.complete || i.naturalWidth === 0)
                           .map(i => i.getAttribute('src'));

  // unrendered TeX: text nodes of the main column outside code, scripts and MathJax output
  const tex = new RegExp([
    String.raw`\$\$`, String.raw`\\\(`, String.raw`\\\[`, String.raw`\\(begin|end)\{`,  // $$ \( \[ \begin{
    String.raw`(^|[^\\$])\$[^$\s]([^$]*?[^\\\s$])?\$`,  // $...$
    String.raw`\\(frac|mathcal|mathrm|omega|theta|alpha|nabla|sum|left|right)\b`,  // common commands
  ].join('|'));
  const skip = 'script, style, pre, code, mjx-container, mjx-assistive-mml, .highlight, .cell_input, textarea';
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const t = n.textContent;
    if (tex.test(t)) rawTex.push(t.trim().slice(0, 100));
  }
  const texErrors = Array.from(main.querySelectorAll('mjx-merror'))
                         .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 100));

  // cell outputs (stderr separately)
  const outputs = Array.from(main.querySelectorAll('.cell_output')).map(o => o.innerText);
  const stderr = Array.from(main.querySelectorAll('.cell_output .stderr, .cell_output .output.stderr'))
                      .map(o => o.innerText.trim()).filter(t => t);

  // width: the main column, then anything wider than it
  const width = main.clientWidth;
  const wide = [];
  for (const el of main.querySelectorAll('table, figure, img, mjx-container[display="true"]')) {
    const w = Math.max(el.scrollWidth, el.getBoundingClientRect().width);
    if (w > width + 1) {
      const what = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                   + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
      wide.push(`${what} ${Math.round(w)} px`);
    }
  }
  // code and text outputs that scroll sideways: the longest line of each
  const codeWide = Array.from(main.querySelectorAll('pre'))
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => el.innerText.split('\n').reduce((a, b) => b.length > a.length ? b : a, '').trim().slice(0, 80));
  return {
    codeWide, mainScroll: main.scrollWidth, mainWidth: width, wide,
    brokenImages, rawTex, texErrors, outputs, stderr,
    formulas: main.querySelectorAll('mjx-container').length, images: imgs.length,
  };
}
"""

WAIT_FOR_MATHJAX = """
async () => {
  if (!window.MathJax) return 'absent';
  for (let i = 0; i < 100 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(MathJax.startup && MathJax.startup.promise)) return 'not started';
  const timeout = new Promise(r => setTimeout(() => r('did not finish in 30 s'), 30000));
  return await Promise.race([MathJax.startup.promise.then(() => 'done'), timeout]);
}
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """A local HTTP server for ``folder`` on 127.0.0.1 and a free port, in a thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def find_html(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()
    built = [d for d in BUILDS if (d / "searchindex.js").is_file()]
    if not built:
        sys.exit(f"no built book in {' or '.join(str(d.relative_to(ROOT)) for d in BUILDS)}: "
                 "run `jupyter-book build book/` (or `make book`) first")
    return max(built, key=lambda d: (d / "searchindex.js").stat().st_mtime)


def pages_of(html: Path) -> list[Path]:
    """Every page of the book: the .html files outside _static, _sources, ..., without the
    search and index pages and without redirect stubs (index.html -> intro.html)."""
    pages = []
    for p in sorted(html.rglob("*.html")):
        rel = p.relative_to(html)
        if any(part.startswith("_") for part in rel.parts) or rel.name in SKIP_PAGES:
            continue
        if 'http-equiv="Refresh"' in p.read_text(errors="replace")[:2000]:
            continue
        pages.append(p)
    return pages


def browser_or_skip() -> str | None:
    """The Chromium binary, or None after printing why the check is skipped (exit 1 under CI)."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    missing = []
    if not Path(chromium).is_file():
        missing.append(f"no Chromium at {chromium}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright is not installed")
    if not missing:
        return chromium
    if os.environ.get("CI", "").lower() == "true":
        print(f"check-book FAILED: {'; '.join(missing)}. {INSTALL}")
        sys.exit(1)
    print(f"check-book SKIPPED: {'; '.join(missing)}. {INSTALL}")
    sys.exit(0)


def local_only(base: str, blocked: list[str]):
    """A route handler that lets requests to ``base`` through and blocks (and notes) the rest."""
    def route(r) -> None:
        url = r.request.url
        if url.startswith(base) or url.startswith(("data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()
    return route


def problems_of(report: dict, mathjax: str, requests: list[str], missing: list[str],
                console: list[str]) -> list[str]:
    """The findings of one page, as lines of text (none: the page passes)."""
    out = [f"request to a non-local URL (blocked): {u}" for u in requests]
    out += [f"local file did not load: {m}" for m in missing]
    # a resource that failed to load is already reported above
    out += [f"JavaScript error: {m}" for m in console if not m.startswith("Failed to load resource")]
    if report["rawTex"] and mathjax != "done":
        out.append(f"MathJax {mathjax}")
    out += [f"unrendered TeX: {t!r}" for t in report["rawTex"]]
    out += [f"MathJax error: {t!r}" for t in report["texErrors"]]
    out += [f"image did not load: {src}" for src in report["brokenImages"]]
    flagged = []  # one finding per output line: the first kind of problem it shows
    for text in report["outputs"]:
        for line in text.splitlines():
            for name, pattern in OUTPUT_PROBLEMS:
                if pattern.search(line):
                    out.append(f"{name} in a cell output: {line.strip()[:120]!r}")
                    flagged.append(line)
                    break
    out += [f"stderr in a cell output: {t[:100]!r}" for t in report["stderr"]
            if not any(line.strip() and line in t for line in flagged)]
    if report["mainScroll"] > report["mainWidth"] + 1:
        out.append(f"main column overflows: scrollWidth {report['mainScroll']} > clientWidth {report['mainWidth']}")
    out += [f"wider than the main column ({report['mainWidth']} px): {w}" for w in report["wide"]]
    if report["codeWide"]:  # one finding for all of them: a page often has many
        n = len(report["codeWide"])
        out.append(f"{n} code block{'s' if n > 1 else ''} or text output{'s' if n > 1 else ''} wider than "
                   f"the column (they scroll sideways), e.g. {report['codeWide'][0]!r}")
    # the same finding twice (e.g. one warning printed in every cell) is listed once,
    # and at most MAX_PER_KIND findings of one kind
    kept, counts = [], {}
    for p in dict.fromkeys(out):
        kind = p.split(":", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= MAX_PER_KIND:
            kept.append(p)
    kept += [f"{kind}: {n - MAX_PER_KIND} more" for kind, n in counts.items() if n > MAX_PER_KIND]
    return kept


def check_page(browser, base: str, rel: str, screenshot: Path) -> tuple[dict, list[str]]:
    """Open one page on a first visit (a fresh browser context), let MathJax finish,
    inspect it and take its screenshot. Returns the page's report and its problems."""
    requests: list[str] = []  # non-local URLs, blocked
    missing: list[str] = []  # local files that did not load
    console: list[str] = []  # JavaScript errors

    def on_response(r) -> None:
        if r.status >= 400 and r.url.startswith(base):
            missing.append(f"HTTP {r.status}: {r.url[len(base):]}")

    def on_failed(r) -> None:
        if r.url.startswith(base):
            missing.append(f"{r.failure}: {r.url[len(base):]}")

    context = browser.new_context(viewport=WINDOW)
    try:
        page = context.new_page()
        page.route("**/*", local_only(base, requests))
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(str(e)))
        page.on("response", on_response)
        page.on("requestfailed", on_failed)
        page.goto(base + rel, wait_until="load")
        mathjax = page.evaluate(WAIT_FOR_MATHJAX)
        report = page.evaluate(INSPECT)
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return report, problems_of(report, mathjax, requests, missing, console)


def check(html: Path, chromium: str, shots: Path) -> int:
    """Check every page of ``html``; print a line per page (and its problems); 1 if any failed."""
    from playwright.sync_api import sync_playwright

    pages = pages_of(html) if html.is_dir() else []
    if not pages:
        sys.exit(f"no built pages in {html}")
    shots.mkdir(parents=True, exist_ok=True)
    server = serve(html)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    print(f"checking {len(pages)} pages of {html} at {base} (screenshots in {shots})")
    failed, start = 0, time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for path in pages:
                rel = path.relative_to(html).as_posix()
                t0 = time.perf_counter()
                shot = shots / (Path(rel).with_suffix("").as_posix().replace("/", "-") + ".png")
                report, problems = check_page(browser, base, rel, shot)
                failed += bool(problems)
                print(f"{'FAIL' if problems else 'ok  '} {rel:28s} {report['formulas']:4d} formulas "
                      f"{report['images']:3d} images {len(problems):3d} problems  {time.perf_counter() - t0:5.1f} s")
                for p in problems:
                    print(f"       - {p}")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"{len(pages)} pages checked in {time.perf_counter() - start:.1f} s: "
          f"{'all passed' if not failed else f'{failed} failed'}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", help="built html folder (default: the newer of book/_build/html and _build/html)")
    parser.add_argument("--screenshots", help="where the page screenshots go (default: DIR/../screenshots)")
    args = parser.parse_args(argv)
    chromium = browser_or_skip()
    html = find_html(args.html)
    shots = Path(args.screenshots) if args.screenshots else html.parent / "screenshots"
    return check(html, chromium, shots)


if __name__ == "__main__":
    sys.exit(main())
