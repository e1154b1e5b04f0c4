# The seven word-embedding families (train-lstm lives in the Makefile). ARGS passes through.
.PHONY: train-gru train-cnn train-cnn-lstm train-attention-lstm train-capsule-lstm train-transformer train-classic

train-gru: data-ready ## BiGRU on word2vec vectors, masked max+mean pooling
	$(PY) train/gru.py $(ARGS)

train-cnn: data-ready ## Kim-style CNN (widths 3,4,5), masked max-over-time
	$(PY) train/cnn.py $(ARGS)

train-cnn-lstm: data-ready ## convolution along time, then a BiLSTM over time
	$(PY) train/cnn_lstm.py $(ARGS)

train-attention-lstm: data-ready ## BiLSTM with masked additive attention over time
	$(PY) train/attention_lstm.py $(ARGS)

train-capsule-lstm: data-ready ## BiLSTM into capsules with dynamic routing
	$(PY) train/capsule_lstm.py $(ARGS)

train-transformer: data-ready ## word-level Transformer encoder, padding mask, masked mean pooling
	$(PY) train/transformer.py $(ARGS)

# Sequential on purpose: each family gets the whole CPU, and the first run's
# word2vec cache serves the others.
train-classic: data-ready ## all seven embedding families in sequence (same ARGS to each)
	$(MAKE) --no-print-directory train-lstm ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-gru ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-cnn ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-cnn-lstm ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-attention-lstm ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-capsule-lstm ARGS="$(ARGS)"
	$(MAKE) --no-print-directory train-transformer ARGS="$(ARGS)"
