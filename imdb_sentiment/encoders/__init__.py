"""Pretrained encoders (transformers, PEFT, bitsandbytes, unsloth), by concern:

- architectures: what differs per model_type (LoRA targets, heads, prefix support)
  and the checks made before any weights load;
- peft_methods: LoRA, P-tuning, prompt and prefix tuning configs;
- loading: a checkpoint loaded for training, quantised and PEFT-wrapped;
- tokens: reviews to token ids, dynamic padding, the forward pass, and raw
  reviews to probabilities (the logged model is imdb_sentiment/serving.py's).

The recipe that trains them is imdb_sentiment/recipes/encoder.py. Heavy
libraries are imported inside the functions that need them.
"""
