"""Length-bucketed batches: reviews of similar length share a batch, so little
padding is computed, and every batch carries its lengths so that models mask
or pack and never read past a review's end."""

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .text import PAD_ID


class SequenceDataset(Dataset):
    def __init__(self, sequences, labels):
        self.sequences = sequences
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, index):
        return self.sequences[index], self.labels[index], index

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self.sequences))


class BucketBatchSampler(Sampler):
    """Batches of similar-length items.

    Shuffled: items are shuffled, cut into pools of `pool_batches` batches,
    sorted by length inside each pool, batched, and the batches shuffled, so
    each epoch differs but stays cheap. Not shuffled (evaluation): batches in
    length order.
    """

    def __init__(self, lengths, batch_size: int, shuffle: bool, seed: int = 0, pool_batches: int = 50):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            for start in range(0, len(order), self.batch_size):
                yield order[start:start + self.batch_size].tolist()
            return
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        for index in rng.permutation(len(batches)):
            yield batches[index].tolist()

    def __len__(self):
        return -(-len(self.lengths) // self.batch_size)


def pad_batch(items):
    """[(ids, label, index)] -> dict(ids [B, T] padded with PAD_ID, lengths, labels, index)."""
    lengths = torch.tensor([max(1, len(ids)) for ids, _, _ in items], dtype=torch.long)
    ids = torch.full((len(items), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, (seq, _, _) in enumerate(items):
        ids[row, : len(seq)] = torch.from_numpy(np.asarray(seq, dtype=np.int64))
    labels = torch.tensor([label for _, label, _ in items], dtype=torch.long)
    index = torch.tensor([i for _, _, i in items], dtype=torch.long)
    return {"ids": ids, "lengths": lengths, "labels": labels, "index": index}


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, T] bool, True on a review's real positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
