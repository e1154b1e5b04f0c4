"""Typed configs and the command line generated from them.

A config is a dataclass whose fields carry `metadata={"help": ...}`; the
parser below turns each field into one flag (`max_length` -> `--max-length`),
so no parameter is listed twice. Validation lives in each dataclass's
`__post_init__` and raises UserError naming the flag.
"""

import argparse
import dataclasses
import re
import types
import typing
from pathlib import Path
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
    register: str | None = option(None, "once the run finishes, register its model in the MLflow Model "
                                        "Registry under this name (a new version)")

    def __post_init__(self):
        require(self.register is None or bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.register)),
                "register", "a model name of letters, digits, '.', '_' and '-' such as imdb-lstm", self.register)
        require(self.register is None or getattr(self, "save_model", True), "register",
                "a model to register (drop --no-save-model)", self.register)
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
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", "auto: bf16 on GPUs that have it, fp16 with loss scaling on CUDA GPUs that do not (T4, "
                "V100), on a CPU bf16 only where it is native and measured faster for the family, else fp32")
    compile: bool = option(False, "torch.compile the model (pays off on a GPU after the first batches compile)")
    resume: str | None = option(None, "RUN_ID: go on with this unfinished run (killed, crashed) from its last "
                                      "finished epoch, in the same MLflow run; give the flags it started with")
    keep_checkpoints: bool = option(False, "keep the checkpoint saved after each epoch once the run finishes "
                                           "(default: removed)")

    def __post_init__(self):
        super().__post_init__()
        require(self.resume is None or (len(self.resume) == 32 and set(self.resume) <= set("0123456789abcdef")),
                "resume", "an MLflow run id (32 hex digits)", self.resume)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.eval_batch_size >= 1, "eval_batch_size", "an integer >= 1", self.eval_batch_size)
        require(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        require(self.grad_clip >= 0, "grad_clip", "a number >= 0 (0: off)", self.grad_clip)
        require(self.patience >= 0, "patience", "an integer >= 0 (0: never stop early)", self.patience)


# --- the recipes' configs (imdb_sentiment/families.py names which family uses which) ---

@dataclasses.dataclass
class EmbeddingConfig(NetworkConfig):
    """Settings of the word-embedding families (each script sets its own defaults)."""
    model: str = option("lstm", "model architecture: one of the MODELS registry")
    lr: float = option(2e-3, "peak learning rate (AdamW)")
    min_freq: int = option(2, "words seen fewer times in the training split become <unk>")
    max_vocab: int | None = option(None, "keep at most this many words")
    embeddings: str = option("word2vec", "word2vec (trained here on train + unlabelled reviews, cached), "
                                         "random, or the path of a GloVe / word2vec file")
    embedding_dim: int = option(200, "word-vector size (must match a vectors file)")
    freeze_embeddings: bool = option(False, "keep the word vectors fixed while training")
    w2v_epochs: int = option(5, "word2vec training epochs")
    w2v_window: int = option(5, "word2vec context window")
    hidden_size: int = option(128, "recurrent hidden size per direction / model width")
    num_layers: int = option(1, "stacked recurrent or encoder layers")
    dropout: float = option(0.3, "dropout before the classifier and between layers")
    embedding_dropout: float = option(0.2, "dropout on the word vectors")
    num_filters: int = option(100, "cnn, cnn-lstm: convolution filters per width")
    filter_sizes: str = option("3,4,5", "cnn: comma-separated convolution widths; cnn-lstm uses the first")
    pool_size: int = option(2, "cnn-lstm: max-pool width along time between convolution and LSTM (1: none)")
    attention_dim: int = option(128, "attention-lstm: size of the additive attention's hidden layer")
    num_capsules: int = option(10, "capsule-lstm: output capsules")
    capsule_dim: int = option(16, "capsule-lstm: size of each output capsule")
    routing_iterations: int = option(3, "capsule-lstm: dynamic routing iterations")
    num_heads: int = option(4, "transformer: attention heads (must divide --hidden-size, the model width)")
    feedforward_dim: int = option(512, "transformer: feed-forward size in each encoder layer")

    @property
    def filter_size_list(self) -> list[int]:
        return [int(part) for part in self.filter_sizes.split(",")]

    def __post_init__(self):
        super().__post_init__()
        from .models import MODELS  # the builders (torch): checked once a config is built, not at --help
        require(self.model in MODELS, "model", f"one of {sorted(MODELS)}", self.model)
        require(self.lr > 0, "lr", "a positive number", self.lr)
        require(0.0 <= self.dropout < 1.0, "dropout", "a number in [0, 1)", self.dropout)
        require(0.0 <= self.embedding_dropout < 1.0, "embedding_dropout", "a number in [0, 1)",
                self.embedding_dropout)
        require(self.min_freq >= 1, "min_freq", "an integer >= 1", self.min_freq)
        require(self.embedding_dim >= 2, "embedding_dim", "an integer >= 2", self.embedding_dim)
        require(self.hidden_size >= 1, "hidden_size", "an integer >= 1", self.hidden_size)
        require(self.num_layers >= 1, "num_layers", "an integer >= 1", self.num_layers)
        require(self.num_filters >= 1, "num_filters", "an integer >= 1", self.num_filters)
        parts = self.filter_sizes.split(",")
        require(all(part.strip().isdigit() and int(part) >= 1 for part in parts), "filter_sizes",
                "comma-separated integers >= 1 such as 3,4,5", self.filter_sizes)
        require(self.pool_size >= 1, "pool_size", "an integer >= 1", self.pool_size)
        require(self.attention_dim >= 1, "attention_dim", "an integer >= 1", self.attention_dim)
        require(self.num_capsules >= 1, "num_capsules", "an integer >= 1", self.num_capsules)
        require(self.capsule_dim >= 1, "capsule_dim", "an integer >= 1", self.capsule_dim)
        require(self.routing_iterations >= 1, "routing_iterations", "an integer >= 1", self.routing_iterations)
        require(self.num_heads >= 1, "num_heads", "an integer >= 1", self.num_heads)
        if self.model == "transformer":
            require(self.hidden_size % self.num_heads == 0, "num_heads",
                    f"a divisor of --hidden-size {self.hidden_size}", self.num_heads)
        require(self.feedforward_dim >= 1, "feedforward_dim", "an integer >= 1", self.feedforward_dim)
        if self.embeddings not in ("word2vec", "random"):
            require(Path(self.embeddings).is_file(), "embeddings",
                    "word2vec, random, or an existing vectors file", self.embeddings)


# Peak learning rates that suit each encoder method when --lr is not given.
DEFAULT_LR = {"none": 2e-5, "lora": 5e-4, "ptuning": 1e-3, "prompt": 5e-3, "prefix": 5e-3}


@dataclasses.dataclass
class EncoderConfig(NetworkConfig):
    """Settings of the pretrained-encoder families (each script sets its own defaults)."""
    model: str = option("bert-base-uncased", "checkpoint: a Hugging Face name or a local folder")
    epochs: int = new_default(NetworkConfig, "epochs", 3)
    max_length: int = option(512, "tokens kept per review, special tokens included")
    method: Literal["none", "lora", "ptuning", "prompt", "prefix"] = option(
        "none", "none (full fine-tuning) or a PEFT method")
    backend: Literal["transformers", "unsloth"] = option(
        "transformers", "transformers, or unsloth (CUDA GPU only; LoRA)")
    quantize: Literal["none", "8bit", "4bit"] = option(
        "none", "load the frozen base in 8 or 4 bits (bitsandbytes; needs a PEFT method)")
    lora_r: int = option(8, "LoRA rank")
    lora_alpha: int = option(16, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = option(0.1, "dropout on the LoRA branch")
    target_modules: str = option("auto", "comma-separated module names LoRA adapts; auto: the "
                                         "attention projections of the architecture (LORA_TARGETS)")
    num_virtual_tokens: int = option(20, "virtual tokens of prompt / p-tuning / prefix methods")
    prompt_init_text: str | None = option(None, "prompt tuning: initialise the virtual tokens from "
                                                "this text (default: random)")
    encoder_hidden_size: int = option(128, "hidden size of the p-tuning prompt encoder / prefix MLP")
    regulariser: Literal["none", "rdrop", "scl"] = option(
        "none", "extra training loss: R-Drop or supervised contrastive (inference unchanged)")
    rdrop_alpha: float = option(1.0, "R-Drop: weight of the symmetric KL between two dropout passes")
    scl_temperature: float = option(0.3, "SCL: temperature of the contrastive softmax")
    scl_lambda: float = option(0.5, "SCL: weight of the contrastive loss added to CE")
    batch_size: int = new_default(NetworkConfig, "batch_size", 16)
    eval_batch_size: int = new_default(NetworkConfig, "eval_batch_size", 64)
    grad_accumulation: int = option(1, "batches whose gradients add up before one optimiser step "
                                            "(the step's batch: --batch-size times this)")
    gradient_checkpointing: bool = option(False, "recompute activations in backward: less memory, slower")
    lr: float | None = option(None, "peak learning rate (default per method: DEFAULT_LR)")
    weight_decay: float = new_default(NetworkConfig, "weight_decay", 0.01)
    warmup_ratio: float = new_default(NetworkConfig, "warmup_ratio", 0.1)
    patience: int = new_default(NetworkConfig, "patience", 1)
    save_model: bool = option(True, "log the trained model (or PEFT adapter) with its tokenizer")
    cpu_threads: int = option(0, "torch CPU threads (0: all cores); on cores other jobs share, 1 can be "
                                 "several times faster than all")

    def __post_init__(self):
        super().__post_init__()
        require(self.quantize == "none" or self.method != "none", "quantize",
                "none with full fine-tuning (quantised weights cannot be trained: add --method lora)",
                self.quantize)
        require(self.backend != "unsloth" or self.method == "lora", "method",
                "lora with --backend unsloth", self.method)
        require(self.lora_r >= 1, "lora_r", "an integer >= 1", self.lora_r)
        require(0.0 <= self.lora_dropout < 1.0, "lora_dropout", "a number in [0, 1)", self.lora_dropout)
        require(self.num_virtual_tokens >= 1, "num_virtual_tokens", "an integer >= 1", self.num_virtual_tokens)
        require(self.rdrop_alpha >= 0, "rdrop_alpha", "a number >= 0", self.rdrop_alpha)
        require(self.scl_temperature > 0, "scl_temperature", "a positive number", self.scl_temperature)
        require(self.scl_lambda >= 0, "scl_lambda", "a number >= 0", self.scl_lambda)
        require(self.grad_accumulation >= 1, "grad_accumulation", "an integer >= 1", self.grad_accumulation)
        require(self.lr is None or self.lr > 0, "lr", "a positive number", self.lr)
        require(self.cpu_threads >= 0, "cpu_threads", "an integer >= 0", self.cpu_threads)
        if self.lr is None:
            self.lr = DEFAULT_LR[self.method]


@dataclasses.dataclass
class TfidfConfig(RunConfig):
    ngram_max: int = option(3, "longest word n-gram used as a feature")
    hash_bits: int = option(22, "features are hashed into 2**hash_bits columns")
    min_df: int = option(2, "n-grams in fewer training reviews than this get no weight")
    C: float = option(64.0, "inverse regularisation strength of the logistic regression")

    def __post_init__(self):
        super().__post_init__()
        require(1 <= self.ngram_max <= 5, "ngram_max", "an integer from 1 to 5", self.ngram_max)
        require(16 <= self.hash_bits <= 26, "hash_bits", "an integer from 16 to 26", self.hash_bits)
        require(self.C > 0, "C", "a positive number", self.C)


@dataclasses.dataclass
class EnsembleConfig(RunConfig):
    """Settings of the ensemble family: which finished runs it stacks."""
    families: str | None = option(None, "comma-separated families whose best finished run (by validation "
                                        "accuracy) is a member; default: every family's best run")
    runs: str | None = option(None, "comma-separated MLflow run ids to stack instead of --families")

    def __post_init__(self):
        super().__post_init__()
        require(not (self.families and self.runs), "runs", "either --families or --runs, not both", self.runs)
        for name in ("families", "runs"):
            value = getattr(self, name)
            require(value is None or all(part.strip() for part in value.split(",")), name,
                    "comma-separated names without empty entries", value)


@dataclasses.dataclass
class DistillConfig(TfidfConfig):
    """Settings of the distill family: a TF-IDF NB-LR student fitted to a teacher's probabilities."""
    teacher: str | None = option(None, "MLflow run id of the teacher (any finished run that logged a model, an "
                                       "ensemble too); default: the best finished ensemble run")
    temperature: float = option(1.0, "softens the teacher: its target is sigmoid(logit(p) / T); T > 1 flattens")
    alpha: float = option(0.2, "weight of the true label on the labelled reviews (1 - alpha: the teacher's); "
                               "the unlabelled reviews have the teacher's target alone")
    unlabeled: bool = option(True, "also fit on the 50,000 unlabelled reviews (at most 2N with --limit N)")

    def __post_init__(self):
        super().__post_init__()
        require(self.temperature > 0, "temperature", "a positive number", self.temperature)
        require(0.0 <= self.alpha <= 1.0, "alpha", "a number in [0, 1]", self.alpha)
        require(self.teacher is None or bool(re.fullmatch(r"[0-9a-f]{32}", self.teacher)), "teacher",
                "an MLflow run id (32 hex digits)", self.teacher)
