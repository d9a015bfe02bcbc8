"""The interactive report page: one HTML file with uPlot, the page's script and the data inline.

The data is JSON inside ``<script type="application/json">`` (``data.script_json``
escapes ``<``, ``>``, ``&``, U+2028/2029); the page's script puts every string into the
DOM with ``textContent``. A Content-Security-Policy allows no network at all: only the
inline script and style, and ``data:`` images.
"""

from __future__ import annotations

from importlib import resources

from ...core.source import Source
from ...version import __version__
from .data import payload, script_json

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:")


def _asset(name: str) -> str:
    text = resources.files("runchain").joinpath(name).read_text(encoding="utf-8")  # e.g. renderers/report/page.js
    for end in ("</script", "</style", "<!--"):  # inlined: must not end its element early
        if end in text.lower():
            raise ValueError(f"{name} contains {end!r}, which would end the inline element")
    return text


def _uplot() -> tuple[str, str]:
    """uPlot's script, prefixed by its license notice, and its style sheet."""
    base = "vendor/uplot/"
    version = _asset(base + "VERSION").strip()
    license_text = _asset(base + "LICENSE")
    if "*/" in license_text:
        raise ValueError("uPlot's LICENSE contains '*/'; it cannot sit in a script comment")
    notice = f"/*! uPlot {version}, https://github.com/leeoniya/uPlot\n{license_text}*/\n"
    return notice + _asset(base + "uPlot.iife.min.js"), _asset(base + "uPlot.min.css")


SCRIPTS = ("page.js", "page_xaxis.js", "page_tree.js", "page_charts.js", "page_compare.js", "page_branches.js",
           "page_runs.js")


def _script() -> str:
    """The page's scripts, in order, inside one strict function: one scope, no globals but
    ``window.runchain``."""
    parts = "\n".join(_asset("renderers/report/" + name) for name in SCRIPTS)
    return f'"use strict";\n(() => {{\n{parts}\n}})();'


def build_page(source: Source, metrics: list[str], shown: list[str], leaves: list[str],
               reload: float | None = None) -> str:
    """The interactive report for ``source`` (see ``report.build_report``)."""
    data = script_json(payload(source, metrics, shown, leaves, __version__, reload))
    uplot_js, uplot_css = _uplot()
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            "<title>runchain report</title>"
            f"<style>{uplot_css}\n{_asset('renderers/report/page.css')}</style></head><body>"
            "<noscript><p>This report draws its charts with JavaScript, which is off. "
            "<code>runchain report --static</code> writes the same report as pictures.</p>"
            "</noscript>"
            f'<script type="application/json" id="runchain-data">{data}</script>'
            f"<script>{uplot_js}</script><script>{_script()}</script>"
            "</body></html>")
