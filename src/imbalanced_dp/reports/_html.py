"""HTML rendering of the report: one self-contained page (CSS inline, figures as base64
data URIs, no script, nothing fetched from the network).

This layer only formats: it receives captions, text cells, saved figures and decided
claims, and numbers figures and tables in the order they appear.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterable, Iterator

import pandas as pd

from ._claims import CONTRADICTED, SUPPORTED, ClaimResult
from ._figures import SavedFigure
from ._format import fmt_ci
from ._sections import Section

CSS = """
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #d7d9dd; --bg-alt: #f6f7f9;
        --ok: #1b7f3b; --bad: #b3261e; --undecided: #6b6b6b; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.8em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.35em; border-bottom: 2px solid var(--line); padding-bottom: 4px;
     margin-top: 2.2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
p.meta, .muted { color: var(--muted); }
nav.toc { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
          padding: 8px 16px; margin: 16px 0; }
nav.toc ol { margin: 4px 0; padding-left: 20px; columns: 2; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
figcaption, caption { color: var(--muted); font-size: 0.92em; text-align: left;
                      margin-top: 6px; caption-side: bottom; }
table { border-collapse: collapse; margin: 12px 0 22px; font-size: 0.88em; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 9px; text-align: left;
         vertical-align: top; }
th { background: var(--bg-alt); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.group-start td { border-top: 2px solid #b9bcc2; }
.table-wrap { overflow-x: auto; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; color: #fff;
         font-size: 0.85em; font-weight: 600; white-space: nowrap; }
.badge.supported { background: var(--ok); }
.badge.contradicted { background: var(--bad); }
.badge.undecided { background: var(--undecided); }
.claim { border: 1px solid var(--line); border-left: 6px solid var(--undecided);
         border-radius: 6px; padding: 10px 16px; margin: 14px 0; }
.claim.supported { border-left-color: var(--ok); }
.claim.contradicted { border-left-color: var(--bad); }
.claim blockquote { margin: 6px 0 10px; font-style: italic; color: #333; }
.claim li { margin: 4px 0; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #1a4d8f; }
ul.findings li { margin: 6px 0; }
.notice { background: #fff4e5; border: 1px solid #f0c36d; padding: 8px 12px;
          border-radius: 6px; }
code { background: var(--bg-alt); padding: 0 3px; border-radius: 3px; }
"""

_NUMERIC = re.compile(r"^[-+−]?\d[\d.,]*(e[-+]?\d+)?( ± [\d.]+)?%?$|^–$")


def esc(text) -> str:
    """HTML-escape any value's text."""
    return html.escape(str(text), quote=True)


def anchor(text: str) -> str:
    """An id usable as a fragment: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "section"


def verdict_class(verdict: str) -> str:
    return {SUPPORTED: "supported", CONTRADICTED: "contradicted"}.get(verdict, "undecided")


def badge(verdict: str) -> str:
    return f'<span class="badge {verdict_class(verdict)}">{esc(verdict)}</span>'


#: A figure's or table's number until the page is complete: kind, series, creation id.
_NUMBER = "@@imbalanced-dp-number-{}-{}-{}@@"
_NUMBER_RE = re.compile(r"@@imbalanced-dp-number-(fig|tab)-(S?)-(\d+)@@")


class Numbering:
    """Numbers figures and tables in the order they appear on the page (main ones 1, 2, …;
    supplementary ones S1, S2, …). Sections may be built in any order: each caption holds
    a placeholder until :meth:`resolve` numbers the finished page."""

    def __init__(self) -> None:
        self.figures = 0
        self.tables = 0
        self._main = (0, 0)
        self._supplement = (0, 0)
        self._prefix = ""
        self._created = 0

    def _placeholder(self, kind: str) -> str:
        self._created += 1
        return _NUMBER.format(kind, self._prefix, self._created)

    def resolve(self, html: str) -> str:
        """Replace the placeholders of ``html`` by numbers in order of appearance."""
        numbers: dict[str, str] = {}
        counts: dict[tuple[str, str], int] = {}

        def number(m: re.Match) -> str:
            token = m.group(0)
            if token not in numbers:
                series = (m.group(1), m.group(2))
                counts[series] = counts.get(series, 0) + 1
                numbers[token] = f"{m.group(2)}{counts[series]}"
            return numbers[token]

        return _NUMBER_RE.sub(number, html)

    @contextlib.contextmanager
    def supplement(self, on: bool = True) -> Iterator[None]:
        """Number what is rendered inside as supplementary (Figure S1, Table S1, ...): for
        content in collapsed ``<details>``, so that the visible numbers run without gaps."""
        if not on or self._prefix:
            yield
            return
        self._main = (self.figures, self.tables)
        self.figures, self.tables = self._supplement
        self._prefix = "S"
        try:
            yield
        finally:
            self._supplement = (self.figures, self.tables)
            self.figures, self.tables = self._main
            self._prefix = ""

    def figure(self, saved: SavedFigure, caption: str, *, alt: str | None = None) -> str:
        """A ``<figure>`` with the PNG inline and a numbered caption."""
        self.figures += 1
        num = self._placeholder("fig")
        files = f"{saved.png.parent.name}/{saved.png.name}"
        if saved.svg is not None:
            files += f", {saved.svg.name}"
        return (
            f'<figure id="figure-{num}"><img src="{saved.data_uri}" '
            f'alt="{esc(alt or caption)}">'
            f"<figcaption><b>Figure {num}.</b> {esc(caption)} "
            f'<span class="muted">({esc(files)})</span></figcaption></figure>'
        )

    def table(
        self,
        df: pd.DataFrame,
        caption: str,
        *,
        group: Iterable[str] = (),
        files: Iterable[str] = (),
        numbered: bool = True,
    ) -> str:
        """A ``<table>`` of text cells with its caption (numbered unless told otherwise);
        repeated values of the ``group`` columns are shown once per block, and a new block
        starts with a rule."""
        if numbered:
            self.tables += 1
        num = self._placeholder("tab") if numbered else ""
        label = f"<b>Table {num}.</b> " if numbered else ""
        tid = f' id="table-{num}"' if numbered else ""
        group = list(group)
        head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
        rows = []
        prev: tuple | None = None
        for values in df.itertuples(index=False, name=None):
            row = dict(zip(df.columns, values))
            key = tuple(row[g] for g in group)
            tds = []
            for c, v in row.items():
                hide = False
                if c in group and prev is not None:
                    n = group.index(c) + 1
                    hide = key[:n] == prev[:n]
                cls = ' class="num"' if _NUMERIC.match(str(v)) else ""
                tds.append(f"<td{cls}>{'' if hide else esc(v)}</td>")
            new_block = bool(group) and prev is not None and key[0] != prev[0]
            tr = '<tr class="group-start">' if new_block else "<tr>"
            rows.append(f"{tr}{''.join(tds)}</tr>")
            prev = key
        links = ", ".join(esc(f) for f in files)
        extra = f' <span class="muted">({links})</span>' if links else ""
        return (
            f'<div class="table-wrap"><table{tid}><caption>{label}'
            f"{esc(caption)}{extra}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )


def claim_html(claim: ClaimResult, numbering: Numbering) -> str:
    """One claim: its verdict, statement, parts, rule and the evidence table."""
    parts = "".join(
        f"<li><b>{esc(p.key)}</b> {esc(p.title)}: {badge(p.verdict)}"
        + ("" if p.votes else ' <span class="muted">(reported, not voted)</span>')
        + f"<br>{esc(p.sentence)}</li>"
        for p in claim.parts
    )
    extra = "".join(f"<p>{esc(s)}</p>" for s in claim.sentences[len(claim.parts) :])
    cells = claim.cells
    evidence = ""
    if not cells.empty:
        show = pd.DataFrame(
            {
                "part": cells["part"],
                "comparison (claimed > 0)": cells["label"],
                "role": cells["role"],
                "mean [95 % CI]": [
                    fmt_ci(m, lo, hi, digits=3, signed=True)
                    for m, lo, hi in zip(cells["mean"], cells["low"], cells["high"])
                ],
                "n": cells["n"].map(lambda x: "" if pd.isna(x) else f"{int(x)}"),
                "p": cells["p_value"].map(lambda x: "" if pd.isna(x) else f"{x:.2g}"),
                "status": cells["status"],
            }
        )
        table = numbering.table(
            show,
            f"Evidence for claim {claim.number}: each comparison, its mean and 95 % CI over "
            f"seeds, the two-sided p-value and whether it confirms, refutes (p below "
            f"0.05 / {len(cells)}) or leaves the claim undecided.",
            group=["part"],
            numbered=False,
        )
        evidence = (
            f"<details><summary>Evidence: {len(cells)} comparisons</summary>{table}</details>"
        )
    return (
        f'<div class="claim {verdict_class(claim.verdict)}" id="claim-{claim.number}">'
        f"<h3>Claim {claim.number} {badge(claim.verdict)}</h3>"
        f"<blockquote>{esc(claim.statement)}</blockquote><ul>{parts}</ul>{extra}"
        f"<details><summary>Decision rule</summary><p>{esc(claim.rule)}</p></details>"
        f"{evidence}</div>"
    )


def section_html(section: Section) -> str:
    return (
        f'<section id="{esc(anchor(section.id))}"><h2>{esc(section.title)}</h2>'
        f"{section.html}</section>"
    )


def page(title: str, header_html: str, sections: list[Section]) -> str:
    """The whole document."""
    toc = "".join(f'<li><a href="#{esc(anchor(s.id))}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(section_html(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="imbalanced-dp">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>{esc(title)}</h1>{header_html}"
        f'<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>{body}</main></body></html>\n'
    )
