"""Length-bucketed batches: reviews of similar length share a batch, so little
padding is computed, and every batch carries its lengths so that models mask
or pack and never read past a review's end."""

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .text import PAD_ID


class TokenIds(Dataset):
    """Token ids of each review (unpadded) with its label; `index` lets predict() put
    batches from any sampler order back in dataset order. Word-vector networks and
    encoders both batch these; only their collate (padding) differs."""

    def __init__(self, ids, labels):
        self.ids = ids
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "label": int(self.labels[index]), "index": index}

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.ids), dtype=np.int64, count=len(self.ids))


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
    """TokenIds items -> dict(ids [B, T] padded with PAD_ID, lengths, labels, index)."""
    lengths = torch.tensor([max(1, len(item["input_ids"])) for item in items], dtype=torch.long)
    ids = torch.full((len(items), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item["input_ids"])] = torch.from_numpy(np.asarray(item["input_ids"], dtype=np.int64))
    labels = torch.tensor([item["label"] for item in items], dtype=torch.long)
    index = torch.tensor([item["index"] for item in items], dtype=torch.long)
    return {"ids": ids, "lengths": lengths, "labels": labels, "index": index}


def make_loader(dataset: TokenIds, batch_size: int, shuffle: bool, seed: int, collate=pad_batch) -> DataLoader:
    """Length-grouped batches (BucketBatchSampler), padded by `collate` to their own longest review."""
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, T] bool, True on a review's real positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
