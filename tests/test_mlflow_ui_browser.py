"""`make mlflow-ui`'s server, checked in a real headless Chromium (marker: browser).

Starts analysis/_mlflow_ui.py (what the make target runs) on a free localhost
port against a store holding one small finished run, and checks that the
React app renders the experiment, the run and its test_acc; then against a
store holding a real (tiny) training run whose model is registered, and checks
the run page shows its datasets and logged model, the runs table its Dataset
column, and the registered model's page its version and alias. Screenshots go
to the test's tmp dir; their paths are printed (pytest -s shows them).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest

from tests.support import log_run, new_store, run_make, stop_process_group
from analysis._mlflow_ui import MODEL_TRAINING_VIEW
from imdb_sentiment.paths import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
EXPERIMENT = "ui-check"
RUN_NAME = "tiny-lstm"
TEST_ACC = "0.8765"
SERVER_START_S = 90  # MLflow's server imports a lot; a busy CI machine is slow
RENDER_S = 30


def require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return
    message = (f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver")
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs them: a skip there would hide a broken setup
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ui_server(tmp_path):
    """The UI serving a store with one finished run: (base URL, experiment id, run id)."""
    uri, client, experiment_id = new_store(tmp_path / "store", EXPERIMENT)
    run_id = log_run(client, experiment_id, 0, name=RUN_NAME,
                     tags={"family": "lstm", "model": "bilstm", "device": "cpu"},
                     metrics={"test_acc": float(TEST_ACC)})
    with serving_ui(uri, tmp_path) as base:
        yield base, experiment_id, run_id


@pytest.fixture
def trained_ui_server(tmp_path, tiny_data_dir, monkeypatch):
    """The UI serving a store with a real TF-IDF run (make train-tfidf, in this process) whose model
    is registered as imdb-tfidf with alias champion: (base URL, experiment id, run)."""
    import mlflow

    from imdb_sentiment import model_registry
    from imdb_sentiment.cli import train

    (tmp_path / "trained").mkdir()
    uri = f"sqlite:///{tmp_path / 'trained' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    outcome = train("tfidf", ["--data-dir", str(tiny_data_dir), "--run-name", "tiny-tfidf"])
    model_registry.register(outcome.run_id, "imdb-tfidf", "champion")
    run = mlflow.MlflowClient(uri).get_run(outcome.run_id)
    with serving_ui(uri, tmp_path) as base:
        yield base, run.info.experiment_id, run


@contextmanager
def serving_ui(uri: str, tmp_path):
    """analysis/_mlflow_ui.py serving the store at uri on a free port: its base URL."""
    from mlflow.tracking import MlflowClient

    port = free_port()
    log_path = tmp_path / f"mlflow-ui-{port}.log"
    with open(log_path, "w") as log:
        # Own session: the server's worker processes are stopped with it.
        server = subprocess.Popen([sys.executable, "analysis/_mlflow_ui.py", "--port", str(port),
                                   "--tracking-uri", uri, "--experiment", EXPERIMENT], cwd=REPO_ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, server, log_path)
        experiment_id = MlflowClient(uri).get_experiment_by_name(EXPERIMENT).experiment_id
        assert log_path.read_text().splitlines()[:2] == [
            f"MLflow UI: {base}  (store: {uri}; Ctrl-C to stop)",
            f"training runs of experiment {EXPERIMENT}: {base}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING_VIEW}"]
        yield base
    finally:
        stop_process_group(server, timeout=15)


def wait_for_health(base, server, log_path):
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"MLflow UI exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"MLflow UI not up after {SERVER_START_S}s:\n{log_path.read_text()}")


@pytest.fixture
def browser(tmp_path):
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def page_text_once_shown(driver, url, *needles) -> str:
    """The page's visible text, once the React app has rendered every needle."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    text = ""

    def rendered(d):
        nonlocal text
        text = d.find_element(By.TAG_NAME, "body").text
        return all(needle in text for needle in needles)

    try:
        WebDriverWait(driver, RENDER_S, poll_frequency=0.5).until(rendered)
    except TimeoutException:
        pytest.fail(f"{url} did not show {needles} within {RENDER_S}s; page text:\n{text}")
    return text


@pytest.mark.browser
def test_ui_shows_experiment_run_and_test_acc(ui_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    base, experiment_id, run_id = ui_server
    runs_list = page_text_once_shown(browser, f"{base}/#/experiments/{experiment_id}/runs",
                                     RUN_NAME)
    assert EXPERIMENT in runs_list

    run_page = page_text_once_shown(browser, f"{base}/#/experiments/{experiment_id}/runs/{run_id}",
                                    "test_acc", TEST_ACC)
    assert EXPERIMENT in run_page and RUN_NAME in run_page and run_id in run_page
    # The metric's row, not just the name somewhere: name and value on adjacent lines.
    lines = run_page.splitlines()
    assert lines[lines.index("test_acc") + 1] == TEST_ACC

    metric = browser.find_element(By.XPATH, "//*[normalize-space(text())='test_acc']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", metric)
    screenshot = tmp_path / "mlflow_ui_run.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot: {screenshot}")


def screenshot(browser, path) -> None:
    assert browser.save_screenshot(str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot: {path}")


@pytest.mark.browser
def test_ui_shows_a_runs_datasets_logged_model_and_the_registered_model(trained_ui_server, browser, tmp_path):
    base, experiment_id, run = trained_ui_server
    digests = {i.dataset.name: i.dataset.digest for i in run.inputs.dataset_inputs}
    training = f"imdb-training ({digests['imdb-training']})"

    view = f"?{MODEL_TRAINING_VIEW}"  # the UI's Model training view, which make mlflow-ui's second line opens
    run_page = page_text_once_shown(browser, f"{base}/#/experiments/{experiment_id}/runs/{run.info.run_id}{view}",
                                    "Logged models (1)", training, "Registered models", "Model registry")
    lines = run_page.splitlines()

    def after_last(heading):  # the run's own box of that name (the sidebar has a "Datasets" too)
        return lines[len(lines) - lines[::-1].index(heading):]

    assert after_last("Datasets")[0] == training
    assert after_last("Registered models")[:2] == ["imdb-tfidf", "v1"]
    assert "test_f1" in lines and "best_threshold" in lines
    screenshot(browser, tmp_path / "mlflow_ui_run_datasets_model.png")

    # make mlflow-ui's second line: the experiment's training runs
    runs_table = page_text_once_shown(browser, f"{base}/#/experiments/{experiment_id}/runs{view}", "tiny-tfidf",
                                      training)
    assert "Dataset" in runs_table.splitlines()
    screenshot(browser, tmp_path / "mlflow_ui_runs_dataset_column.png")

    model_page = page_text_once_shown(browser, f"{base}/#/models/imdb-tfidf{view}", "Version 1", "champion")
    lines = model_page.splitlines()
    assert "@ champion" in lines[lines.index("Version 1"):], model_page
    screenshot(browser, tmp_path / "mlflow_ui_registered_model.png")


@pytest.mark.slow
def test_busy_port_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "analysis/_mlflow_ui.py", "--port", str(port)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (f"error: port {port} on 127.0.0.1 is in use; pick another, "
                           f"e.g. make mlflow-ui MLFLOW_PORT={port + 1}\n")


@pytest.mark.slow
def test_make_mlflow_ui_on_a_busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_make("mlflow-ui", f"MLFLOW_PORT={port}", timeout=60)
    assert done.returncode != 0
    assert f"error: port {port} on 127.0.0.1 is in use" in done.stderr
