"""Reviews to token ids and batches for an encoder: HTML out, head+tail
truncation, dynamic padding by the tokenizer; and the forward pass."""

import numpy as np
import torch

from .. import text

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
