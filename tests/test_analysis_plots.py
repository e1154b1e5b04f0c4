"""analysis/plots.py against a real SQLite MLflow store filled with known runs."""

import pytest
from mlflow.tracking import MlflowClient

from analysis import plots
from tests.support import log_run, new_store, run_make

PNG = b"\x89PNG\r\n\x1a\n"


def curves(val_acc):
    """Per-epoch metrics whose training side is visibly different from validation."""
    return {"val_acc": val_acc, "train_acc": [v + 0.05 for v in val_acc],
            "val_loss": [1 - v for v in val_acc], "train_loss": [0.9 - v for v in val_acc]}


def model(family, seconds, acc, val_acc=(), predict=None):
    return dict(tags={"family": family, "model": family, "device": "cpu"},
                metrics={"test_acc": acc, "train_seconds": seconds, "best_val_acc": max(val_acc, default=acc),
                         **({"predict_seconds_per_1k": predict} if predict else {})},
                curves=curves(list(val_acc)) if val_acc else None)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri, client, exp = new_store(tmp_path_factory.mktemp("store"))
    lstm = log_run(client, exp, 1, **model("lstm", 300, 0.88, [0.80, 0.85, 0.84], predict=2.0))
    log_run(client, exp, 2, **model("gru", 100, 0.86, [0.83, 0.86], predict=1.5))
    log_run(client, exp, 3, **model("cnn", 600, 0.80))  # slower and worse than lstm
    bert = log_run(client, exp, 4, **model("bert", 5000, 0.93, [0.92, 0.93], predict=40.0))
    # Trained from scratch, the ensemble took its members' time too (lstm, bert: 5300 s) and the
    # student its teacher's: 7000 + 5300 and 400 + 12300.
    ensemble = log_run(client, exp, 15, params={"members": f"{lstm},{bert}"},
                       **model("ensemble", 7000, 0.94, predict=45.0))
    distill = model("distill", 400, 0.90, predict=0.05)
    distill["tags"]["teacher"] = ensemble
    log_run(client, exp, 16, **distill)
    # Would top the front if failed runs counted.
    log_run(client, exp, 5, status="FAILED", **model("transformer", 1, 0.99, [0.99]))
    parent = log_run(client, exp, 6, tags={"study_parent": "true", "study": "lstm search"},
                     metrics={"n_trials_finished": 2, "n_trials_pruned": 1, "n_trials_failed": 1})
    trial = {"study": "lstm search", "mlflow.parentRunId": parent, "family": "lstm"}
    # As the search ends them: a pruned trial KILLED and tagged PRUNED; the failed
    # one without a tag (its state read from the status).
    for number, (status, state, val_acc) in enumerate([("FINISHED", "FINISHED", [0.80, 0.84]),
                                                       ("FAILED", None, [0.70]),
                                                       ("FINISHED", "FINISHED", [0.82, 0.86]),
                                                       ("KILLED", "PRUNED", [0.60, 0.61])]):
        tags = {**trial, "trial_number": number, **({"trial_state": state} if state else {})}
        log_run(client, exp, 7 + number, status=status, tags=tags,
                metrics={"best_val_acc": max(val_acc)}, curves={"val_acc": val_acc})
    return uri, client, parent


def test_pareto_front_keeps_only_undominated_points():
    points = [(100, 0.86, "gru"), (300, 0.88, "lstm"), (600, 0.80, "cnn"),
              (300, 0.87, "lstm-twin"), (5000, 0.93, "bert"), (100, 0.86, "gru-twin"),
              (50, 0.70, "tfidf")]
    # gru-twin ties gru on both: the first one listed at that point stays.
    assert plots.pareto_front(points) == [(50, 0.70, "tfidf"), (100, 0.86, "gru"),
                                          (300, 0.88, "lstm"), (5000, 0.93, "bert")]
    assert plots.pareto_front([]) == []


def test_learning_curve_figure_draws_each_family_split():
    figure = plots.learning_curve_figure("Word vectors", {
        "lstm": {"val_acc": [(1, 0.8), (2, 0.85)], "train_acc": [(1, 0.9), (2, 0.95)]},
        "gru": {"val_acc": [(1, 0.7)], "val_loss": [(1, 0.5)]}})
    acc_axes, loss_axes = figure.axes
    drawn = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
             for line in acc_axes.lines}
    assert drawn == {"lstm (val)": ([1, 2], [0.8, 0.85]), "lstm (train)": ([1, 2], [0.9, 0.95]),
                     "gru (val)": ([1], [0.7])}
    assert [line.get_label() for line in loss_axes.lines] == ["gru (val)"]
    plots.plt.close(figure)


def test_make_plots_writes_files_and_logs_study_plot(store, tmp_path, capsys):
    uri, client, parent = store
    args = ["--tracking-uri", uri, "--experiment", "imdb-sentiment"]

    plots.main(args + ["--out-dir", str(tmp_path / "a"), "--no-log"])
    assert client.list_artifacts(parent, "analysis") == []
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "learning_curves_encoders.png", "learning_curves_word_vectors.png", "pareto.png",
        "pareto_prediction.png", "study_lstm_search.png"]
    out = capsys.readouterr().out
    assert "Pareto front of test accuracy and training time (nothing else is both faster and more accurate):\n" \
           "  gru: test accuracy 0.8600, 100.00 s\n" \
           "  lstm: test accuracy 0.8800, 300.00 s\n" \
           "  bert: test accuracy 0.9300, 5000.00 s\n" \
           "  ensemble: test accuracy 0.9400, 12300.00 s\n" in out
    # Runs that logged no prediction time (cnn) are not points of the prediction plot.
    assert "Pareto front of test accuracy and prediction time per 1,000 reviews (nothing else is both faster " \
           "and more accurate):\n" \
           "  distill: test accuracy 0.9000, 0.05 s\n" \
           "  bert: test accuracy 0.9300, 40.00 s\n" \
           "  ensemble: test accuracy 0.9400, 45.00 s\n" in out

    out = tmp_path / "b"
    plots.main(args + ["--out-dir", str(out)])
    for png in out.iterdir():
        assert png.read_bytes().startswith(PNG)
    assert [a.path for a in client.list_artifacts(parent, "analysis")] == [
        "analysis/study_lstm_search.png"]
    logged = MlflowClient(uri).download_artifacts(parent, "analysis/study_lstm_search.png",
                                                  str(tmp_path))
    assert open(logged, "rb").read() == (out / "study_lstm_search.png").read_bytes()


def test_study_figure_separates_finished_from_stopped_trials(store):
    from imdb_sentiment.store import RunStore, study_parents, trials_of

    run_store = RunStore(store[0], "imdb-sentiment")
    runs = run_store.runs()
    (parent,) = study_parents(runs)["lstm search"]
    trials = trials_of(runs, "lstm search")
    histories = {t.run_id: run_store.metric_history(t.run_id, "val_acc") for t in trials}
    figure = plots.study_figure("lstm search", parent, trials, histories)
    value_axes, curve_axes = figure.axes
    assert figure._suptitle.get_text() == "Study lstm search (2 finished, 1 pruned, 1 failed)"
    # Finished trials 0 and 2 with their values; the failed trial 1 is not a value.
    assert value_axes.collections[0].get_offsets().tolist() == [[0, 0.84], [2, 0.86]]
    best_line = value_axes.lines[0]
    assert (list(best_line.get_xdata()), list(best_line.get_ydata())) == ([0, 2], [0.84, 0.86])
    drawn = sorted((line.get_color(), line.get_linestyle(), list(line.get_ydata()))
                   for line in curve_axes.lines if len(line.get_ydata()))
    assert drawn == [("C0", "-", [0.80, 0.84]), ("C0", "-", [0.82, 0.86]),
                     ("C3", ":", [0.70]), ("grey", "--", [0.60, 0.61])]
    assert [t.get_text() for t in curve_axes.get_legend().get_texts()] == [
        "finished", "pruned", "failed"]
    plots.plt.close(figure)


@pytest.mark.slow
def test_make_plots(store, tmp_path):
    done = run_make("plots", f"ARGS=--tracking-uri {store[0]} --out-dir {tmp_path} --no-log")
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*.png"))) == 5
