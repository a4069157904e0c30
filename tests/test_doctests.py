"""The examples in the docstrings of the public modules run as written (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

#: Packages whose modules (and submodules) carry the documented Python API.
PACKAGES = (
    "imbalanced_dp.data",
    "imbalanced_dp.metrics",
    "imbalanced_dp.models",
    "imbalanced_dp.privacy",
    "imbalanced_dp.studies",
    "imbalanced_dp.estimator",
    "imbalanced_dp.reports",
    "imbalanced_dp.mitigations",
    "imbalanced_dp.tuning",
)


def _modules() -> list[str]:
    names = ["imbalanced_dp"]
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names.extend(info.name for info in pkgutil.walk_packages(path, prefix=package + "."))
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples(module_name, capsys):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    tests = [t for t in finder.find(module, module_name) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    report = capsys.readouterr().out
    assert result.failed == 0, report


def test_the_api_has_examples():
    """The entry points a user meets first show how they are called."""
    import imbalanced_dp.data as data
    import imbalanced_dp.estimator as estimator
    import imbalanced_dp.metrics as metrics

    for obj in (
        data.load_dataset,
        data.prepare_split,
        metrics.per_class_report,
        estimator.DPMLPClassifier,
    ):
        assert ">>>" in (obj.__doc__ or ""), obj.__qualname__


def test_public_api_resolves():
    """Every name the top-level package promises can be imported from it."""
    import imbalanced_dp

    expected = {
        "DPMLPClassifier",
        "ResultsStore",
        "StudySpec",
        "get_engine",
        "load_csv",
        "load_dataset",
        "make_imbalanced",
        "per_class_report",
        "prepare_split",
        "preset",
        "run_runs",
        "write_report",
    }
    assert expected <= set(imbalanced_dp.__all__)
    assert isinstance(imbalanced_dp.__version__, str)
    for name in set(imbalanced_dp.__all__) - {"__version__"}:
        obj = getattr(imbalanced_dp, name)
        # the very object its defining module exports, not a stand-in
        module = getattr(obj, "__module__", "") or ""
        assert module.startswith("imbalanced_dp."), (name, module)
        home = importlib.import_module(module)
        assert getattr(home, name) is obj, name
