"""Embedding-family models and their registry.

Every model takes (ids [B, T], lengths [B]) and returns logits [B, 2]. None
reads past a review's end: recurrent layers run on packed sequences, and
pooling, attention and convolutions mask padded positions, so a review's
output does not depend on how much padding follows it (tests check this).

MODELS maps a family name to a builder `build(config, embedding) -> nn.Module`.
"""

import torch
from torch import nn

from .batching import length_mask
from .errors import UserError

NEG_INF = -1e4  # large enough to vanish in softmax / max, safe in half precision


def make_embedding(matrix: torch.Tensor | None, vocab_size: int, dim: int, freeze: bool) -> nn.Embedding:
    embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
    if matrix is not None:
        embedding.weight.data.copy_(matrix)
    embedding.weight.requires_grad = not freeze
    return embedding


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time [B, T, H] -> [B, H], real positions only."""
    return values.masked_fill(~mask[..., None], NEG_INF).max(dim=1).values


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask[..., None].to(values.dtype)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def reverse_within_length(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's real part in place, padding left where it is: [B, T, ...]."""
    positions = torch.arange(values.shape[1], device=values.device)[None, :]
    flipped = lengths[:, None] - 1 - positions
    index = torch.where(flipped >= 0, flipped, positions)
    return values.gather(1, index[..., None].expand_as(values))


class MaskedBiRNN(nn.Module):
    """A bidirectional LSTM/GRU that never reads padding, without packing.

    The forward direction runs on the padded batch as it is (padding comes
    after a review, so real positions never see it). The backward direction
    runs on each review reversed within its own length, so it too starts at
    the review's last real token. Packed sequences would do the same, but on
    CPU their backward pass is quadratic in the length (a full-size zero
    fill per time step) and ran 30x slower here.
    Outputs at padded positions are arbitrary: callers mask them.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for layer in range(num_layers):
            size = input_size if layer == 0 else 2 * hidden_size
            self.forward_layers.append(rnn_cls(size, hidden_size, batch_first=True))
            self.backward_layers.append(rnn_cls(size, hidden_size, batch_first=True))
        self.dropout = nn.Dropout(dropout)
        self.output_size = 2 * hidden_size

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = inputs
        for layer, (forward_rnn, backward_rnn) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if layer > 0:
                outputs = self.dropout(outputs)
            ahead, _ = forward_rnn(outputs)
            behind, _ = backward_rnn(reverse_within_length(outputs, lengths))
            outputs = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=-1)
        return outputs


class RecurrentClassifier(nn.Module):
    """Bidirectional LSTM or GRU over word vectors; masked max+mean pooling over time.

    Pooling both ways uses every time step (a last hidden state forgets the
    start of a 400-word review); the masks keep padding out of both.
    """

    def __init__(self, embedding: nn.Embedding, cell: str, hidden_size: int, num_layers: int,
                 dropout: float, embedding_dropout: float):
        super().__init__()
        self.embedding = embedding
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = MaskedBiRNN(cell, embedding.embedding_dim, hidden_size, num_layers, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * hidden_size, 2))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = length_mask(lengths, ids.shape[1])
        states = self.rnn(self.embedding_dropout(self.embedding(ids)), lengths)
        pooled = torch.cat([masked_max(states, mask), masked_mean(states, mask)], dim=-1)
        return self.head(pooled)


def build_lstm(config, embedding):
    return RecurrentClassifier(embedding, "lstm", config.hidden_size, config.num_layers,
                               config.dropout, config.embedding_dropout)


def build_gru(config, embedding):
    return RecurrentClassifier(embedding, "gru", config.hidden_size, config.num_layers,
                               config.dropout, config.embedding_dropout)


MODELS = {
    "lstm": build_lstm,
    "gru": build_gru,
}


def build_model(name: str, config, embedding: nn.Embedding) -> nn.Module:
    if name not in MODELS:
        raise UserError(f"--model {name}: unknown; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name](config, embedding)


def forward_batch(model, batch):
    """How the training loop calls an embedding-family model."""
    return model(batch["ids"], batch["lengths"])


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
