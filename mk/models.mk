# What to do with a logged model: predict, register it, serve it. Uses the Makefile's PY and setup targets.

MODEL ?=
PORT ?= 5050
FAMILY ?=
NAME ?=
RUN ?=
INPUT ?=
OUT ?=

.PHONY: predict register serve bench-serve

register: setup ## register a family's best finished run, alias champion: make register FAMILY=lstm [NAME=imdb-lstm]
	@test -n "$(FAMILY)" || { echo 'usage: make register FAMILY=<family> [NAME=<registered model name>]' >&2; exit 2; }
	$(PY) models/register.py --family "$(FAMILY)" $(if $(NAME),--name "$(NAME)") $(ARGS)

serve: setup ## a model over HTTP on 127.0.0.1: make serve MODEL=models:/imdb-lstm@champion [PORT=5050]
	@test -n "$(MODEL)" || { echo 'usage: make serve MODEL=<models:/name@alias or runs:/<run id>/model> [PORT=5050]' >&2; exit 2; }
	$(PY) models/serve.py --model "$(MODEL)" --port $(PORT) $(ARGS)

bench-serve: data-ready ## the server under 2,000 reviews (batches of 50, 8 clients): LSTM and TF-IDF, or ARGS="--models URI,URI"
	$(PY) bench/serve.py $(ARGS)

predict: setup ## new reviews through a logged model: make predict RUN=<run id> (or MODEL=<uri>) INPUT=reviews.txt OUT=new.csv
	@test -n "$(RUN)$(MODEL)" -a -n "$(INPUT)" -a -n "$(OUT)" || { echo 'usage: make predict RUN=<run id> (or MODEL=models:/<name>@<alias>) INPUT=<reviews .txt or .tsv> OUT=<new .csv>' >&2; exit 2; }
	$(PY) models/predict.py $(if $(RUN),--run-id "$(RUN)") $(if $(MODEL),--model "$(MODEL)") --input "$(INPUT)" --out "$(OUT)" $(ARGS)
