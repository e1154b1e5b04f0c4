# The word-vector families train with `make train-<family>` (the Makefile's pattern rule).
.PHONY: train-classic

# Every word-vector family of the registry, sequential on purpose: each gets the whole CPU, and the first run's
# word2vec cache serves the others.
CLASSIC = $(shell $(PYTHON_BOOT) -m imdb_sentiment.families --recipe embedding)

train-classic: data-ready ## all seven word-vector families in sequence (same ARGS to each)
	@for family in $(CLASSIC); do $(MAKE) --no-print-directory train-$$family ARGS="$(ARGS)" || exit $$?; done
