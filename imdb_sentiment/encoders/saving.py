"""Saving a trained encoder (weights or PEFT adapter, tokenizer, settings) and
loading it back for prediction."""

import json
from pathlib import Path

import numpy as np
import torch

from ..batching import TokenIds, make_loader
from ..config import EncoderConfig
from ..training import predict
from .tokens import forward, make_collate, tokenize

def save_model(model, tokenizer, config: EncoderConfig, model_type: str, folder: Path) -> None:
    """save_pretrained of the model (or PEFT adapter) and tokenizer, plus what reloading needs."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "imdb_encoder.json").write_text(json.dumps(
        {"base_model": config.model, "model_type": model_type, "method": config.method,
         "quantize": config.quantize, "max_length": config.max_length, "truncation": config.truncation},
        indent=2))


def load_for_prediction(folder, device: str = "cpu"):
    """(model in eval mode, tokenizer, settings) from a folder save_model wrote (e.g. a downloaded artifact)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    settings = json.loads((folder / "imdb_encoder.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "adapter_config.json").exists():
        from peft import AutoPeftModelForSequenceClassification
        model = AutoPeftModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    return model.to(device).eval(), tokenizer, settings


def predict_reviews(model, tokenizer, reviews, max_length: int, truncation: str = "head_tail",
                    batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Positive-class probabilities of raw reviews, in order."""
    ids = tokenize(tokenizer, list(reviews), max_length, truncation)
    loader = make_loader(TokenIds(ids, np.zeros(len(ids))), batch_size, False, 0, make_collate(tokenizer))
    probs, _ = predict(model, loader, forward, torch.device(device))
    return probs
