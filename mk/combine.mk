# Combining runs: the ensemble family (make train-ensemble, by the Makefile's pattern rule).
.PHONY: ensemble

ensemble: train-ensemble ## stack finished runs (ARGS="--families lstm,tfidf" or "--runs ID,ID"; default all)
