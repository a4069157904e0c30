"""Threats, measured: membership inference per class (loss threshold, LiRA offline and
online) and an empirical audit of ε in one training run (Steinke, Nasr & Jagielski 2023).

Importing this package registers its section of the HTML report.
"""

from ._audit import AuditRun, Canaries, audit_runs, dirac_init, make_canaries
from ._bound import AuditBound, audit_p_value, audit_scores, epsilon_lower_bound, gaussian_epsilon
from ._experiment import (
    ATTACK_FAMILIES,
    STUDY_CANARIES,
    STUDY_SHADOWS,
    AttackConfig,
    AttackReport,
    config_for_spec,
    dp_bound,
    run_attacks,
    run_study_attacks,
    standardise,
)
from ._mia import ATTACK_NAMES, attack_scores, lira_scores, logit_confidence, loss_scores
from ._report import attack_sections, format_text, roc_figure
from ._roc import (
    REPORT_FPRS,
    BootstrapPlan,
    RocSummary,
    paired_gap_ci,
    roc_auc,
    roc_curve,
    summarize_roc,
    tpr_at_fpr,
)
from ._train import (
    CONTROL,
    MembershipModels,
    PrivacySetting,
    TrainingSettings,
    parse_privacy,
    plan_setting,
    random_halves,
    train_membership_models,
)

__all__ = [
    "ATTACK_FAMILIES",
    "ATTACK_NAMES",
    "CONTROL",
    "REPORT_FPRS",
    "STUDY_CANARIES",
    "STUDY_SHADOWS",
    "AttackConfig",
    "AttackReport",
    "AuditBound",
    "AuditRun",
    "BootstrapPlan",
    "Canaries",
    "MembershipModels",
    "PrivacySetting",
    "RocSummary",
    "TrainingSettings",
    "attack_scores",
    "attack_sections",
    "audit_p_value",
    "audit_runs",
    "audit_scores",
    "config_for_spec",
    "dirac_init",
    "dp_bound",
    "epsilon_lower_bound",
    "format_text",
    "gaussian_epsilon",
    "lira_scores",
    "logit_confidence",
    "loss_scores",
    "make_canaries",
    "paired_gap_ci",
    "parse_privacy",
    "plan_setting",
    "random_halves",
    "roc_auc",
    "roc_curve",
    "roc_figure",
    "run_attacks",
    "run_study_attacks",
    "standardise",
    "summarize_roc",
    "tpr_at_fpr",
    "train_membership_models",
]
