"""Pretrained encoders (full fine-tuning, PEFT, R-Drop, SCL, unsloth) on the shared loop.

Work in progress: the public entry point is fixed, its body is being filled in.
"""

from dataclasses import dataclass
from typing import Callable

from .config import RunConfig, option
from .pipeline import Outcome


@dataclass
class EncoderConfig(RunConfig):
    """Settings of the pretrained-encoder families (each script sets its own defaults)."""
    model: str = option("bert-base-uncased", "checkpoint name or local folder")


def run_encoder(config: EncoderConfig, family: str, on_epoch: Callable | None = None,
                parent_run_id: str | None = None, extra_tags: dict | None = None) -> Outcome:
    """Train and test one encoder, logged as one MLflow run (same contract as run_embedding_family)."""
    raise NotImplementedError("run_encoder is being written (issue 4)")
