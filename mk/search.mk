# Optuna searches (issue 5): each trial trains as the family's train/ script does.
# Flags go through ARGS, e.g. make search-max-length ARGS="--family gru --budget-gpu-hours 2".
# Any fields of any family: make search FAMILY=gru ARGS="--param lr=loguniform:1e-4:1e-2 --param dropout=uniform:0.1:0.5".
# Many workers: run the same command on each machine with --storage postgresql://... and
# MLFLOW_TRACKING_URI pointing at one MLflow server (docs/search.md).
OPTUNA_STORAGE ?= sqlite:///$(CURDIR)/mlflow/optuna.db
DASHBOARD_PORT ?= 8080
FAMILY ?=

.PHONY: search search-lora search-rdrop search-scl search-max-length optuna-dashboard

search: data-ready ## Optuna over any config fields: make search FAMILY=gru ARGS="--param lr=loguniform:1e-4:1e-2"
	$(PY) search/custom.py $(if $(FAMILY),--family $(FAMILY)) $(ARGS)

search-lora: data-ready ## Optuna: LoRA r, alpha and lr of DeBERTa-LoRA (device-hour budget, resumable)
	$(PY) search/lora.py $(ARGS)

search-rdrop: data-ready ## Optuna: R-Drop alpha (--family rdrop|rdrop-lora)
	$(PY) search/rdrop.py $(ARGS)

search-scl: data-ready ## Optuna: SCL temperature and lambda (--family scl|scl-lora)
	$(PY) search/scl.py $(ARGS)

search-max-length: data-ready ## Optuna: max_length of a family (--family lstm, bert, ...)
	$(PY) search/max_length.py $(ARGS)

optuna-dashboard: setup ## optuna-dashboard on 127.0.0.1 (DASHBOARD_PORT=8080, OPTUNA_STORAGE=<url>; default mlflow/optuna.db)
	@mkdir -p mlflow
	@echo "optuna-dashboard on http://127.0.0.1:$(DASHBOARD_PORT) (from another machine: ssh -L $(DASHBOARD_PORT):127.0.0.1:$(DASHBOARD_PORT))"
	$(VENV)/bin/optuna-dashboard --host 127.0.0.1 --port $(DASHBOARD_PORT) "$(OPTUNA_STORAGE)"
