"""Private hyperparameter search: the best DP model for the minority class, with the
search paid for in ε.

:func:`private_search` draws a random number of trials from a :class:`SearchSpace`
(Papernot & Steinke's private selection, accounted by
:func:`imbalanced_dp.privacy.plan_selection`), trains them together on the fast engine,
scores them with noise on held-out training rows and returns the best as a
:class:`SearchResult` whose privacy ledger covers the whole search.
"""

from ._search import (
    DEFAULT_HOLDOUT,
    DEFAULT_OBJECTIVE,
    DEFAULT_TRIALS,
    MIN_HELDOUT_PER_CLASS,
    OBJECTIVES,
    SCALER_SHARE,
    SECRET_TRIALS_NOTE,
    SELECTION_ACCOUNTANT,
    SearchResult,
    SearchSettings,
    objective_value,
    private_search,
)
from ._space import (
    DEFAULT_SPACE,
    DIMENSION_HELP,
    DIMENSIONS,
    PRESET,
    SEARCH_MITIGATIONS,
    THRESHOLD_RULES,
    Candidate,
    SearchSpace,
    load_space,
    parse_dimension,
)

__all__ = [
    "DEFAULT_HOLDOUT",
    "DEFAULT_OBJECTIVE",
    "DEFAULT_SPACE",
    "DEFAULT_TRIALS",
    "DIMENSIONS",
    "DIMENSION_HELP",
    "MIN_HELDOUT_PER_CLASS",
    "OBJECTIVES",
    "PRESET",
    "SCALER_SHARE",
    "SEARCH_MITIGATIONS",
    "SECRET_TRIALS_NOTE",
    "SELECTION_ACCOUNTANT",
    "THRESHOLD_RULES",
    "Candidate",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "load_space",
    "objective_value",
    "parse_dimension",
    "private_search",
]
