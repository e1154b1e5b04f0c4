# Combining runs: the ensemble and distill families (make train-ensemble, make train-distill, by the
# Makefile's pattern rule), and what the student buys at prediction time.
.PHONY: ensemble bench-distill

ensemble: train-ensemble ## stack finished runs (ARGS="--families lstm,tfidf" or "--runs ID,ID"; default all)

bench-distill: data-ready ## the distilled student vs its teacher scoring the test reviews (their logged models)
	$(PY) bench/distill_speed.py $(ARGS)
