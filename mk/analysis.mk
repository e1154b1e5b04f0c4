# Uses the Makefile's PY and setup target.

MLFLOW_PORT ?= 5000
FILES ?=

.PHONY: tables plots mlflow-ui score

tables: setup ## every results table from MLflow -> analysis/results*, README and docs/ sections (else analysis/local/)
	$(PY) analysis/tables.py --pages README.md docs/*.md --ui-url http://127.0.0.1:$(MLFLOW_PORT) $(ARGS)

plots: setup ## learning curves, accuracy-vs-time Pareto front, study plots -> analysis/plots/
	$(PY) analysis/plots.py $(ARGS)

mlflow-ui: setup ## MLflow UI for the project's store on 127.0.0.1 (port: MLFLOW_PORT=5000)
	$(PY) analysis/_mlflow_ui.py --port $(MLFLOW_PORT) $(ARGS)

score: setup ## accuracy and AUC of submissions: make score FILES="a.csv b.csv"
	@test -n "$(FILES)" || { echo 'usage: make score FILES="submission.csv ..."' >&2; exit 2; }
	$(PY) analysis/score.py $(FILES) $(ARGS)
