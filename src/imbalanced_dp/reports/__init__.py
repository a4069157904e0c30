"""Reports: the study's tables, figures, findings and the self-contained HTML report.

Compute, then render: :func:`load_report_data` reads a store into DataFrames,
:func:`compute_evidence` and :func:`evaluate_claims` decide the study's claims from
intervals, the ``*_figure`` functions return matplotlib figures, the table builders return
DataFrames, and :func:`build_report` writes everything and ``report.html``.
"""

from ._build import build_report
from ._claims import CLAIMS, VERDICTS, ClaimResult, evaluate_claims
from ._data import ReportData, load_report_data
from ._evidence import Evidence, compute_evidence
from ._figures import (
    class_distribution_figure,
    confusion_figure,
    fraction_utility_figure,
    heatmap_figure,
    nonprivate_metrics_figure,
    privacy_utility_figure,
    recall_gap_figure,
    save_figure,
    training_split_figure,
)
from ._folder import MANIFEST, ReportFolderError, check_report_dir, default_report_dir
from ._inversion import (
    advantage_figure,
    format_inversion_text,
    inversion_findings,
    model_inversion_figure,
    write_inversion_figures,
)
from ._prose import finding_sentences
from ._sections import SECTION_PROVIDERS, Section, register_section_provider
from ._sensitivity import ScalingChoice, analyse_choices, collapse_sentences, verdict_table
from ._tables import (
    cells,
    fairness_table,
    metric_table,
    table3,
    table4,
    to_latex,
    to_markdown,
    to_text,
)
from ._threats import format_text as format_attack_text
from ._threats import roc_figure, threat_sections
from ._tuning import tuning_curves, tuning_differences, tuning_utility_figure

__all__ = [
    "CLAIMS",
    "MANIFEST",
    "SECTION_PROVIDERS",
    "VERDICTS",
    "ClaimResult",
    "Evidence",
    "ReportData",
    "ReportFolderError",
    "ScalingChoice",
    "Section",
    "advantage_figure",
    "analyse_choices",
    "build_report",
    "cells",
    "check_report_dir",
    "class_distribution_figure",
    "collapse_sentences",
    "compute_evidence",
    "confusion_figure",
    "default_report_dir",
    "evaluate_claims",
    "fairness_table",
    "finding_sentences",
    "format_attack_text",
    "format_inversion_text",
    "fraction_utility_figure",
    "heatmap_figure",
    "inversion_findings",
    "load_report_data",
    "metric_table",
    "model_inversion_figure",
    "nonprivate_metrics_figure",
    "privacy_utility_figure",
    "recall_gap_figure",
    "register_section_provider",
    "roc_figure",
    "save_figure",
    "table3",
    "table4",
    "threat_sections",
    "to_latex",
    "to_markdown",
    "to_text",
    "training_split_figure",
    "tuning_curves",
    "tuning_differences",
    "tuning_utility_figure",
    "verdict_table",
    "write_inversion_figures",
]
