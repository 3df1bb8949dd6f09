"""First render of a service map in headless Chromium (target: ≤ 3 s for the Tonghui map).

Renders ``map.html`` of a finished ``watersupply run`` (or runs one into a temporary folder) and
opens it in Debian's Chromium through Playwright, as the browser tests do (every request outside
the file refused), timing ``page.goto`` until the page marks itself ready
(``html[data-ws-ready='1']``). The minimum of `repeat` loads is reported with the machine's load.
The tests only guard against a hang (15 s): wall-clock figures belong here.

    python benchmarks/map_render.py [MAP.html] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def first_render_s(browser, path: Path) -> tuple[float, float]:
    """Seconds from navigation to ready, and the page's own layer-build time (ms)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file://", "data:")) else r.abort())
    t0 = time.perf_counter()
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("html[data-ws-ready='1']", timeout=60_000)
    seconds = time.perf_counter() - t0
    build_ms = float(page.evaluate("window.__wsmap.buildMs"))
    page.close()
    return seconds, build_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("map", nargs="?", help="a map.html (default: run the bundled Tonghui model first)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        if args.map:
            path = Path(args.map)
        else:
            subprocess.run([sys.executable, "-m", "watersupply", "--quiet", "run", "-o", tmp], check=True)
            path = next(Path(tmp).rglob("map.html"))
        load0 = os.getloadavg()[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            runs = [first_render_s(browser, path) for _ in range(args.repeat)]
            browser.close()
        best = min(runs)
        print(f"{path.name}: {path.stat().st_size / 1e6:.2f} MB; first render {best[0]:.2f} s (min of {args.repeat}; "
              f"all {', '.join(f'{s:.2f}' for s, _ in runs)} s), layers built in {best[1]:.0f} ms; target ≤ 3 s; "
              f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
