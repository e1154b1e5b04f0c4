"""Shared fixtures: a real MLflow store per test, the real data, tiny Kaggle files."""

import os
from pathlib import Path

import pytest

from tests.support import find_real_data, write_kaggle_files

# Tests run many small models, some in subprocesses at once: one thread each
# avoids OpenMP threads spinning against each other on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


# The modules that take longest, first (their summed test durations in `make test`, most first):
# `make test` runs the suite on every core (pytest-xdist, a module per worker so that its
# fixtures are built once), and a long module started last leaves the other cores idle at the
# end. The Makefile passes --no-loadscope-reorder: xdist's default order (most tests first) put
# the two-test, four-minute test_reference_settings.py last.
LONGEST_FIRST = ["test_reference_settings.py", "test_search.py", "test_search_distributed.py", "test_encoders.py",
                 "test_distill.py", "test_pretraining.py", "test_classic_families.py", "test_end_to_end.py",
                 "test_served_runs.py", "test_resume.py", "test_training.py", "test_concurrent_store.py",
                 "test_predict_speed.py", "test_doc2vec.py", "test_mlflow_ui_browser.py", "test_distributed.py",
                 "test_serving.py"]


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the precision marker must be there by then
def pytest_collection_modifyitems(config, items):
    """Tests marked native_bf16 skip on a CPU without native bf16, those marked no_native_bf16 on
    one with it, saying why; both count as precision tests (`make test` runs those again as an
    AVX2 host where this one has native bf16). The longest modules go first (LONGEST_FIRST)."""
    from imdb_sentiment.device import cpu_has_native_bf16, describe_cpu_bf16

    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module's order stays

    native = cpu_has_native_bf16()
    for item in items:
        wanted = {"native_bf16": True, "no_native_bf16": False}
        for marker, needs_native in wanted.items():
            if marker not in item.keywords:
                continue
            item.add_marker(pytest.mark.precision)
            if needs_native != native:
                item.add_marker(pytest.mark.skip(
                    reason=f"this CPU has {describe_cpu_bf16()}; the test is for one with"
                           f"{'' if needs_native else 'out'} it (make test-as-avx2 runs the other kind)"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    found = find_real_data()
    if found is None:
        pytest.fail("the real data is needed: run `make data` (or set IMDB_SHARED_DATA)")
    return found


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A real SQLite MLflow store in a temp dir, used by everything the test runs."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "test")
    import mlflow
    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def tiny_data_dir(tmp_path) -> Path:
    return write_kaggle_files(tmp_path / "kaggle")
