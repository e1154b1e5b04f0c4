"""Reviews to token ids and batches for an encoder: HTML out, head+tail
truncation, dynamic padding by the tokenizer; the forward pass; raw reviews to
probabilities (what the logged pyfunc model does with an encoder)."""

import numpy as np
import torch

from .. import text
from ..batching import TokenIds, make_loader


def clean_reviews(reviews) -> list[str]:
    """HTML line breaks and tags out, whitespace collapsed: what the tokenizer sees."""
    return [" ".join(text.strip_html(review).split()) for review in reviews]


def tokenize(tokenizer, reviews, max_length: int, truncation: str) -> list[list[int]]:
    """Token ids (special tokens included) of at most max_length per review.

    head_tail keeps the first quarter and the last three quarters; the first
    and last tokens are the tokenizer's own specials ([CLS] ... [SEP]).
    """
    cleaned = clean_reviews(reviews)
    if truncation == "head":
        return tokenizer(cleaned, truncation=True, max_length=max_length)["input_ids"]
    out = []
    for ids in tokenizer(cleaned, truncation=False, verbose=False)["input_ids"]:
        out.append(ids if len(ids) <= max_length else
                   text.truncate(np.asarray(ids), max_length, truncation).tolist())
    return out


def make_collate(tokenizer):
    """Dynamic padding: each batch padded to its own longest review (tokenizer.pad)."""
    def collate(items):
        padded = tokenizer.pad({"input_ids": [item["input_ids"] for item in items]}, padding=True,
                               return_tensors="pt", return_attention_mask=True)
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
                "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
                "index": torch.tensor([item["index"] for item in items], dtype=torch.long)}
    return collate


def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def predict_reviews(model, tokenizer, reviews, max_length: int, truncation: str = "head_tail",
                    batch_size: int = 64, device: str = "cpu", precision: str = "fp32") -> np.ndarray:
    """Positive-class probabilities of raw reviews, in order (the forward pass in `precision`)."""
    from ..training import predict  # the loop (accelerate): only when predicting

    ids = tokenize(tokenizer, list(reviews), max_length, truncation)
    loader = make_loader(TokenIds(ids, np.zeros(len(ids))), batch_size, False, 0, make_collate(tokenizer))
    probs, _ = predict(model, loader, forward, torch.device(device), precision=precision)
    return probs
