"""Reports: the study's tables, figures and the HTML report."""

from ._build import build_report
from ._tables import cells, metric_table, table3, table4, to_latex, to_markdown, to_text

__all__ = ["build_report", "cells", "metric_table", "table3", "table4", "to_latex", "to_markdown", "to_text"]
