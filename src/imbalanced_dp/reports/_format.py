"""Number formats shared by every part of a report (tables, findings, sections)."""

from __future__ import annotations

import math


def fmt_number(x: float, digits: int, sign: str = "") -> str:
    """A number without a negative zero (``-0.001`` at 2 digits reads ``0.00``)."""
    r = round(x, digits)
    return f"{0.0 if r == 0 else r:{sign}.{digits}f}"


def fmt_ci(mean: float, low: float, high: float, *, digits: int = 2, signed: bool = False) -> str:
    """``"0.61 [0.57, 0.65]"``; ``"0.61 (no CI: one seed)"`` when the interval is unknown.

    A bound that is not zero but would print as ``0.00`` gets more digits (up to 4), so that
    an interval that crosses zero never reads as one that ends at zero.
    """
    if mean is None or not math.isfinite(mean):
        return "n/a"
    sign = "+" if signed else ""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{fmt_number(mean, digits, sign)} (no CI: one seed)"
    while digits < 4 and any(x != 0 and round(x, digits) == 0 for x in (low, high)):
        digits += 1
    return (
        f"{fmt_number(mean, digits, sign)} [{fmt_number(low, digits)}, {fmt_number(high, digits)}]"
    )


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def fmt_share(share: float) -> str:
    return f"{100 * share:.0f} %" if share >= 0.1 else f"{100 * share:.1f} %"


def row_ci(r, **kw) -> str:
    return fmt_ci(float(r["mean"]), float(r["low"]), float(r["high"]), **kw)


def join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def fmt_num(x, digits: int = 3) -> str:
    """A number, or ``–`` when it is missing or not finite (a record's ``None``)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def fmt_signed(x, digits: int = 3) -> str:
    """A number with its sign, or ``–`` when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:+.{digits}f}"


def fmt_interval(v, lo, hi, *, digits: int = 3, signed: bool = False) -> str:
    """``0.612 [0.571, 0.650]`` (``+`` signs when ``signed``); the value alone when the
    interval is missing."""
    f = fmt_signed if signed else fmt_num
    if lo is None or hi is None:
        return f(v, digits)
    return f"{f(v, digits)} [{f(lo, digits)}, {f(hi, digits)}]"
