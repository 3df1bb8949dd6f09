"""Screenshots of the service maps of a third-party network with many derived settlements.

Reads WNTR's ky4 (27 settlements derived from demand-node clusters), writes its
HTML map and PNG map, opens the HTML in headless Debian Chromium at several zooms
and reports how many settlement names are shown and whether any two overlap.

Run: ``python benchmarks/crowded_labels.py OUT_DIR [NETWORK]`` (NETWORK: ky4, Net6, …).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import wntr

from watersupply.convert import read_inp
from watersupply.maps import render_service_map

CHROMIUM = "/usr/bin/chromium"

OVERLAPS_JS = """() => {
  const boxes = [...document.querySelectorAll('.ws-label')]
    .filter(e => getComputedStyle(e).visibility !== 'hidden')
    .map(e => e.getBoundingClientRect());
  let n = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;
  }
  return [boxes.length, document.querySelectorAll('.ws-label').length, n];
}"""


def main(out: Path, name: str = "ky4") -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = read_inp(os.path.join(wntr.library.__path__[0], "networks", f"{name}.inp"))
    layers = {k: v for k, v in net.items() if k in ("nodes", "pipes", "facilities", "settlements", "pumps")}
    html = render_service_map(layers, out_html=out / f"{name}.html", title=name, out_png=out / f"{name}.png")
    print(f"{name}: {len(net['settlements'])} settlements; wrote {html} and {name}.png")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("html[data-ws-ready='1']", timeout=30_000)
        page.wait_for_function("window.__wsmap.fontsReady === true", timeout=30_000)
        for _ in range(3):
            shown, total, overlaps = page.evaluate(OVERLAPS_JS)
            zoom = page.evaluate("window.__wsmap.map.getZoom()")
            shot = out / f"{name}_zoom{zoom}.png"
            page.screenshot(path=str(shot))
            print(f"zoom {zoom}: {shown} of {total} names shown, {overlaps} overlapping pairs -> {shot}")
            page.evaluate("window.__wsmap.map.zoomIn(1, {animate: false})")
            page.wait_for_timeout(300)
        b.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(sys.argv[2:3]))
