"""Length-bucketed batches: reviews of similar length share a batch, so little
padding is computed, and every batch carries its lengths so that models mask
or pack and never read past a review's end."""

import os

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

    Data parallel (num_replicas > 1): every process builds the same global
    batches of batch_size x num_replicas items and takes its contiguous slice
    (`rank`) of each, so each process trains on length-grouped batches, every
    review is seen exactly once per epoch, every process takes the same number
    of steps, and a step's global batch is the one a single process with
    batch_size x num_replicas would train on. (accelerate's own BatchSamplerShard
    drops a short batch met mid-epoch or pads the last with repeated reviews.)
    """

    def __init__(self, lengths, batch_size: int, shuffle: bool, seed: int = 0, pool_batches: int = 50,
                 num_replicas: int = 1, rank: int = 0):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} of {num_replicas} replicas")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.num_replicas = num_replicas
        self.rank = rank
        self.global_batch = batch_size * num_replicas
        self.pool = self.global_batch * pool_batches
        self.epoch = 0
        if num_replicas > 1 and len(self.lengths) < num_replicas:
            raise ValueError(f"{len(self.lengths)} items cannot feed {num_replicas} processes")

    def shard(self, num_replicas: int, rank: int) -> "BucketBatchSampler":
        """This sampler's batches as process `rank` of `num_replicas` sees them."""
        return BucketBatchSampler(self.lengths, self.batch_size, self.shuffle, self.seed, self.pool_batches,
                                  num_replicas, rank)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[np.ndarray]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[start:start + self.global_batch] for start in range(0, len(order), self.global_batch)]
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool):
            pool = order[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i:i + self.global_batch] for i in range(0, len(pool), self.global_batch))
        return [batches[index] for index in rng.permutation(len(batches))]

    def __iter__(self):
        batches = self._global_batches()
        if self.num_replicas == 1:
            for batch in batches:
                yield batch.tolist()
            return
        # A last batch too small to give every process an item joins another one.
        short = next((i for i, batch in enumerate(batches) if len(batch) < self.num_replicas), None)
        if short is not None:
            neighbour = short - 1 if short else 1
            merged = np.concatenate([batches[neighbour], batches[short]])
            batches[neighbour] = merged[np.argsort(self.lengths[merged], kind="stable")]
            del batches[short]
        for batch in batches:
            yield np.array_split(batch, self.num_replicas)[self.rank].tolist()

    def __len__(self):
        count = -(-len(self.lengths) // self.global_batch)
        if self.num_replicas > 1 and count > 1 and len(self.lengths) % self.global_batch \
                and len(self.lengths) % self.global_batch < self.num_replicas:
            count -= 1
        return count


def pad_batch(items):
    """TokenIds items -> dict(ids [B, T] padded with PAD_ID, lengths, labels, index)."""
    lengths = torch.tensor([max(1, len(item["input_ids"])) for item in items], dtype=torch.long)
    ids = torch.full((len(items), int(lengths.max())), PAD_ID, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item["input_ids"])] = torch.from_numpy(np.asarray(item["input_ids"], dtype=np.int64))
    labels = torch.tensor([item["label"] for item in items], dtype=torch.long)
    index = torch.tensor([item["index"] for item in items], dtype=torch.long)
    return {"ids": ids, "lengths": lengths, "labels": labels, "index": index}


def make_loader(dataset: TokenIds, batch_size: int, shuffle: bool, seed: int, collate=pad_batch,
                device=None) -> DataLoader:
    """Length-grouped batches (BucketBatchSampler), padded by `collate` to their own longest review.

    For a CUDA device, worker processes collate the next batches while the GPU computes,
    into pinned memory (copied to the GPU asynchronously); on a CPU collation is cheap
    next to the model, and workers would only take cores from it."""
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, **loader_workers(device))


def loader_workers(device) -> dict:
    """DataLoader arguments for `device`: workers and pinned memory on CUDA only."""
    if device is None or torch.device(device).type != "cuda":
        return {}
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    workers = max(1, min(4, (os.cpu_count() or 2) // processes - 1))
    return {"num_workers": workers, "pin_memory": True, "persistent_workers": True}


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, T] bool, True on a review's real positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
