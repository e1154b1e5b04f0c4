"""Typed configs and the command line generated from them.

A config is a dataclass whose fields carry `metadata={"help": ...}`; the
parser below turns each field into one flag (`max_length` -> `--max-length`),
so no parameter is listed twice. Validation lives in each dataclass's
`__post_init__` and raises UserError naming the flag.
"""

import argparse
import dataclasses
import types
import typing
from typing import Any, Literal

from .errors import UserError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def option(default, help: str, choices=None):
    """A config field: its default, its help text, optional choices."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = list(choices)
    return dataclasses.field(default=default, metadata=metadata)


def new_default(base, name: str, default):
    """Field `name` of dataclass `base` with another default; its help and its
    checks (in base's __post_init__) stay where they are written once."""
    return dataclasses.field(default=default, metadata=base.__dataclass_fields__[name].metadata)


def _unwrap_optional(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line) instead of printing usage + exit."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message} (see --help)")


def build_parser(config_cls, prog: str | None = None, description: str | None = None,
                 defaults: dict | None = None) -> argparse.ArgumentParser:
    defaults = defaults or {}
    parser = _Parser(prog=prog, description=description,
                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if not field.init:
            continue
        tp, optional = _unwrap_optional(hints[field.name])
        default = defaults.get(field.name, field.default)
        kwargs: dict[str, Any] = {"default": default, "help": field.metadata.get("help", ""),
                                  "dest": field.name}
        if typing.get_origin(tp) is Literal:
            kwargs["choices"] = list(typing.get_args(tp))
            kwargs["type"] = type(kwargs["choices"][0])
        elif tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = tp
            if "choices" in field.metadata:
                kwargs["choices"] = field.metadata["choices"]
        if optional and tp is not bool:
            kwargs["metavar"] = tp.__name__.upper() if isinstance(tp, type) else None
        parser.add_argument(flag(field.name), **kwargs)
    return parser


def parse_config(config_cls, argv=None, prog=None, description=None, defaults=None):
    """Parse argv into config_cls; `defaults` lets a script set its own defaults."""
    parser = build_parser(config_cls, prog=prog, description=description, defaults=defaults)
    namespace = parser.parse_args(argv)
    return config_cls(**vars(namespace))


def flatten(config, prefix: str = "") -> dict:
    """A config (nested dataclasses allowed) as flat {name: value} for logging."""
    flat = {}
    for key, value in dataclasses.asdict(config).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                flat[f"{name}.{sub_key}"] = sub_value
        else:
            flat[name] = value
    return flat


def require(condition: bool, field: str, expected: str, value) -> None:
    """Validation helper for __post_init__: a one-line error naming the flag."""
    if not condition:
        raise UserError(f"{flag(field)}: expected {expected}, got {value!r}")


def _default_data_dir() -> str:
    from .paths import data_dir
    return str(data_dir())


@dataclasses.dataclass
class RunConfig:
    """What every training script accepts."""
    data_dir: str = option(_default_data_dir(), "folder holding Kaggle's files (`make data` fills data/)")
    limit: int | None = option(None, "at most N training and N test reviews (stratified; word2vec then "
                                     "reads at most 2N unlabelled ones): for quick runs and tests")
    val_fraction: float = option(0.2, "share of the labelled reviews held out for validation (stratified)")
    seed: int = option(42, "seed for the split, initialisation, batching and dropout")
    epochs: int = option(5, "maximum training epochs (early stopping may end sooner)")
    max_length: int = option(400, "tokens kept per review")
    run_name: str | None = option(None, "MLflow run name (default: family and time)")
    experiment: str | None = option(None, "MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or imdb-sentiment)")
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    progress: bool = option(True, "show a progress bar per epoch")

    def __post_init__(self):
        require(self.limit is None or self.limit >= 10, "limit", "an integer >= 10", self.limit)
        require(0.0 < self.val_fraction < 0.9, "val_fraction", "a number in (0, 0.9)", self.val_fraction)
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        require(self.max_length >= 8, "max_length", "an integer >= 8", self.max_length)


@dataclasses.dataclass
class NetworkConfig(RunConfig):
    """What every script that trains a network with the shared loop accepts.

    The embedding and encoder families want other defaults for these; they
    restate a field with `new_default` and nothing else."""
    truncation: Literal["head", "head_tail"] = option(
        "head_tail", "which tokens of a long review to keep: the first ones, or the first quarter "
                     "and the last three quarters (Sun et al. 2019: best on IMDB)")
    batch_size: int = option(64, "training batch size")
    eval_batch_size: int = option(256, "batch size for validation and test")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_ratio: float = option(0.05, "share of steps for linear warm-up, then linear decay")
    grad_clip: float = option(1.0, "gradient norm clip (0: off)")
    patience: int = option(2, "stop after this many epochs without a validation-accuracy gain (0: never)")

    def __post_init__(self):
        super().__post_init__()
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.eval_batch_size >= 1, "eval_batch_size", "an integer >= 1", self.eval_batch_size)
        require(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        require(self.grad_clip >= 0, "grad_clip", "a number >= 0 (0: off)", self.grad_clip)
        require(self.patience >= 0, "patience", "an integer >= 0 (0: never stop early)", self.patience)
