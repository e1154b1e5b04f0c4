# Uses the Makefile's PY and setup target.

MLFLOW_PORT ?= 5000
FILES ?=
RUN ?=
INPUT ?=
OUT ?=

.PHONY: tables plots mlflow-ui score predict

tables: setup ## accuracy + study tables from MLflow -> analysis/results*, README results section
	$(PY) analysis/tables.py --readme README.md --ui-url http://127.0.0.1:$(MLFLOW_PORT) $(ARGS)

plots: setup ## learning curves, accuracy-vs-time Pareto front, study plots -> analysis/plots/
	$(PY) analysis/plots.py $(ARGS)

mlflow-ui: setup ## MLflow UI for the project's store on 127.0.0.1 (port: MLFLOW_PORT=5000)
	$(PY) analysis/_mlflow_ui.py --port $(MLFLOW_PORT)

score: setup ## accuracy and AUC of submissions: make score FILES="a.csv b.csv"
	@test -n "$(FILES)" || { echo 'usage: make score FILES="submission.csv ..."' >&2; exit 2; }
	$(PY) analysis/score.py $(FILES) $(ARGS)

predict: setup ## new reviews through a logged model: make predict RUN=<run id> (or MODEL=<uri>) INPUT=reviews.txt OUT=new.csv
	@test -n "$(RUN)$(MODEL)" -a -n "$(INPUT)" -a -n "$(OUT)" || { echo 'usage: make predict RUN=<run id> (or MODEL=models:/<name>@<alias>) INPUT=<reviews .txt or .tsv> OUT=<new .csv>' >&2; exit 2; }
	$(PY) analysis/predict.py $(if $(RUN),--run-id "$(RUN)") $(if $(MODEL),--model "$(MODEL)") --input "$(INPUT)" --out "$(OUT)" $(ARGS)
