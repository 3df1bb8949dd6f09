"""The Chinese font of every map: Noto Sans CJK SC (SIL Open Font License 1.1) from ``mplfonts``.

For PNG maps it is registered with matplotlib (:func:`cjk_font`, :func:`cjk_rc`);
for HTML maps it is subset to exactly the characters on the page and embedded
as a ``data:`` URL ``@font-face`` (:func:`font_face_css`), so 汉字 never depend
on the viewer's system fonts.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import io
import logging
import re
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import matplotlib
from matplotlib import font_manager

__all__ = ["CJK_FONT_FILE", "cjk_font_file", "cjk_font", "cjk_rc", "WEB_FONT_FAMILY", "FONT_STACK",
           "page_characters", "font_face_css"]

log = logging.getLogger(__name__)

#: The font file (inside the mplfonts package) used for Chinese labels.
CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"


def cjk_font_file() -> Path:
    """Path of Noto Sans CJK SC (:data:`CJK_FONT_FILE`) inside the installed ``mplfonts`` package.

    Raises
    ------
    ImportError
        ``mplfonts`` (or its font file) is not installed (``pip install mplfonts``).
    """
    try:
        path = resources.files("mplfonts") / "fonts" / CJK_FONT_FILE
        with resources.as_file(path) as p:
            font_file = Path(p)
    except ModuleNotFoundError:
        raise ImportError("Chinese labels need the mplfonts package (Noto Sans CJK SC): pip install mplfonts") from None
    if not font_file.is_file():
        raise ImportError(f"mplfonts does not ship {CJK_FONT_FILE}; reinstall it: pip install --force-reinstall mplfonts")
    return font_file


@functools.lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register Noto Sans CJK SC from ``mplfonts`` with matplotlib and return its family name.

    Raises
    ------
    ImportError
        ``mplfonts`` (or its font file) is not installed (``pip install mplfonts``).
    """
    font_file = cjk_font_file()
    font_manager.fontManager.addfont(str(font_file))
    return font_manager.FontProperties(fname=str(font_file)).get_name()


@contextlib.contextmanager
def cjk_rc() -> Iterator[None]:
    """Matplotlib settings that draw text in the CJK font (minus signs as hyphens, SVG text as text)."""
    family = cjk_font()
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [family, "DejaVu Sans"],
                                "axes.unicode_minus": False, "svg.fonttype": "none"}):
        yield



#: CSS family of the Chinese font embedded in every map: a subset of Noto Sans CJK SC
#: (SIL Open Font License 1.1) from the ``mplfonts`` package, so that 汉字 do not depend
#: on the viewer's system fonts.
WEB_FONT_FAMILY = "WS Noto Sans CJK SC"
#: Font stack of all text on the map: the embedded font first, then system fonts.
FONT_STACK = (f'"{WEB_FONT_FAMILY}","Helvetica Neue",Arial,"Noto Sans CJK SC","Source Han Sans SC",'
              '"Microsoft YaHei","PingFang SC",sans-serif')
# OpenType features kept for horizontal text; other-locale (locl) and vertical forms are dropped.
_FONT_FEATURES = ("calt", "ccmp", "kern", "liga", "mark", "mkmk", "rlig")
# name table records kept: family and style names, copyright (0) and the OFL licence (13, 14)
_FONT_NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 13, 14)
_PRINTABLE_ASCII = frozenset(map(chr, range(0x20, 0x7F)))


def page_characters(page: str) -> str:
    r"""Every character a page can show, sorted and without repeats.

    The literal text, the ``\uXXXX`` escapes (JSON data, scripts) and HTML
    entities, plus printable ASCII; control characters and lone surrogates
    are left out.

    Examples
    --------
    >>> page_characters('<b>主管</b> "\\u2013" &#215;')[-5:]
    '~×–主管'
    """
    decoded = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    chars = set(page) | set(html.unescape(decoded)) | _PRINTABLE_ASCII
    return "".join(sorted(c for c in chars
                          if c >= " " and not "\x7f" <= c <= "\x9f" and not "\ud800" <= c <= "\udfff"))


def _woff2_available() -> bool:
    try:
        import brotli  # noqa: F401  (fontTools compresses WOFF2 with it)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=16)
def font_face_css(chars: str) -> str:
    """A CSS ``@font-face`` rule embedding Noto Sans CJK SC, subset to `chars`, as a ``data:`` URL.

    The font file is found with :func:`cjk_font_file`
    and subset with ``fontTools.subset`` (hinting and vertical/locale forms
    dropped), compressed as WOFF2 when ``brotli`` is installed, else WOFF
    (zlib). The result depends only on `chars` and the installed font and
    fontTools, so pages stay byte-identical between runs. Characters the
    font lacks fall back to the next fonts of :data:`FONT_STACK`.

    Returns
    -------
    str
        The rule for family :data:`WEB_FONT_FAMILY`, or ``""`` (with a
        warning) when ``mplfonts`` is not installed.

    Examples
    --------
    >>> css = font_face_css("联惠社区 Lianhui 0123")
    >>> css.startswith('@font-face{font-family:"WS Noto Sans CJK SC"') and ";base64," in css
    True
    """
    from fontTools import subset

    try:
        source = cjk_font_file()
    except ImportError as exc:
        warnings.warn(f"{exc}; the map relies on the viewer's fonts for Chinese text", stacklevel=3)
        return ""
    opts = subset.Options()
    opts.flavor = "woff2" if _woff2_available() else "woff"
    opts.layout_features = list(_FONT_FEATURES)
    opts.name_IDs = list(_FONT_NAME_IDS)
    opts.hinting = False
    opts.desubroutinize = True
    opts.recalc_timestamp = False
    font = subset.load_font(str(source), opts, dontLoadGlyphNames=True)
    try:
        sub = subset.Subsetter(opts)
        sub.populate(text="".join(sorted(set(chars))))
        sub.subset(font)
        buf = io.BytesIO()
        subset.save_font(font, buf, opts)
        log.debug("embedded font: %d characters, %d glyphs, %d bytes %s", len(set(chars)),
                  len(font.getGlyphOrder()), buf.tell(), opts.flavor)
    finally:
        font.close()
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'@font-face{{font-family:"{WEB_FONT_FAMILY}";font-style:normal;font-weight:400;font-display:block;'
            f'src:url(data:font/{opts.flavor};base64,{data}) format("{opts.flavor}")}}')
