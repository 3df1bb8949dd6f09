"""The page's code: Leaflet (vendored by ``django-js-lib-leaflet``) and the map's own app
(``static/app.js``, ``static/app.css``), all read as package files through
:mod:`importlib.resources` and inlined, so a map loads nothing from the network.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
from importlib import resources

from .fonts import FONT_STACK

__all__ = ["leaflet_assets", "app_assets", "external_references"]

log = logging.getLogger(__name__)

_LEAFLET_PKG = "js_lib_leaflet"


@functools.lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """Leaflet 1.9.4 JavaScript and CSS from the installed ``django-js-lib-leaflet`` package.

    The CSS's images are inlined as ``data:`` URIs (layer-control icon) or
    removed (default marker icons, unused), and source-map comments are
    dropped, so nothing is fetched.

    Raises
    ------
    ImportError
        The package is not installed (``pip install django-js-lib-leaflet``).
    """
    try:
        root = resources.files(_LEAFLET_PKG) / "static" / "js_lib_leaflet"
        js = (root / "leaflet.js").read_text(encoding="utf-8")
        css = (root / "leaflet.css").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ImportError("offline maps inline Leaflet from the django-js-lib-leaflet package: "
                          f"pip install 'django-js-lib-leaflet>=1.9.4' ({exc})") from None
    if "Leaflet 1.9" not in js[:400]:
        log.warning("django-js-lib-leaflet does not ship Leaflet 1.9.x; the map may not work")
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)

    def _image(match: re.Match[str]) -> str:
        fname = match.group(1)
        if fname.startswith("layers"):
            data = (root / "images" / fname).read_bytes()
            return "url(data:image/png;base64," + base64.b64encode(data).decode("ascii") + ")"
        return "none"

    css = re.sub(r"url\(\s*['\"]?images/([\w.-]+)['\"]?\s*\)", _image, css)
    css = re.sub(r"/\*# sourceMappingURL=\S+ \*/", "", css)
    for s in (js, css):
        if re.search(r"</(script|style)", s, flags=re.I):
            raise RuntimeError("the Leaflet files contain a closing script/style tag; cannot inline them")
    return js, css


def external_references(page: str) -> list[str]:
    """URLs an HTML page would fetch by itself: ``src``/``href`` attributes and CSS ``url()``.

    Tile URL templates inside scripts are not listed (they are only used when
    a basemap was asked for). ``data:`` URIs and in-page anchors are ignored.
    """
    found = re.findall(r"""<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""",
                       page, flags=re.I)
    found += re.findall(r"""url\(\s*["']?([^"')\s]+)""", page)
    found += re.findall(r"""@import\s+["']([^"']+)""", page)
    return sorted({u for u in found if not u.startswith(("data:", "#"))})


@functools.lru_cache(maxsize=1)
def app_assets() -> tuple[str, str]:
    """The map app's JavaScript and CSS (``watersupply/maps/static/app.js`` and ``app.css``).

    The CSS's ``__WS_FONT_STACK__`` placeholder is filled with :data:`~watersupply.maps.fonts.FONT_STACK`.

    Examples
    --------
    >>> js, css = app_assets()
    >>> "function wsServiceMap(map, dataId)" in js, "WS Noto Sans CJK SC" in css
    (True, True)
    """
    root = resources.files(__package__) / "static"
    js = (root / "app.js").read_text(encoding="utf-8")
    css = (root / "app.css").read_text(encoding="utf-8").replace("__WS_FONT_STACK__", FONT_STACK)
    for name, s in (("app.js", js), ("app.css", css)):
        if re.search(r"</(script|style)", s, flags=re.I):
            raise RuntimeError(f"static/{name} contains a closing script/style tag; it cannot be inlined")
    return js, css
