# Pretrained encoders (issue 4): full fine-tuning, PEFT, R-Drop / SCL, unsloth.
# Extra flags go through ARGS, e.g. make train-bert ARGS="--model <folder> --max-length 256".
.PHONY: train-bert train-distilbert train-roberta train-deberta train-modernbert \
	train-deberta-lora train-deberta-ptuning train-deberta-prompt train-deberta-prefix \
	train-rdrop train-scl train-rdrop-lora train-scl-lora \
	train-unsloth-deberta train-unsloth-modernbert bench-encoder

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
