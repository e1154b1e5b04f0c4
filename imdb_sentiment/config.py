"""Typed configs and the command line generated from them.

A config is a dataclass whose fields carry `metadata={"help": ...}`; the
parser below turns each field into one flag (`max_length` -> `--max-length`),
so no parameter is listed twice. Validation lives in each dataclass's
`__post_init__` and raises UserError naming the flag.

A field some runs do not use says so once, as data: `applies={"model":
("capsule-lstm",)}`. Giving it to a run it does not apply to is an error, and
the run does not log it (`applicable`). A value comes from the first of these
that sets it: the command line, a `--config FILE.yaml`, the script's defaults
(a family's, imdb_sentiment/families.py), the field's default here, then
`__post_init__` may derive one left unset (an encoder's lr from DEFAULT_LR);
`--print-config` shows each value with where it came from.
"""

import argparse
import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal

from .errors import ArgumentParser, UserError
from .families import FAMILIES


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _one_of(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _applies_text(applies: dict) -> str:
    return " and ".join(f"{flag(key)} {_one_of(values)}" for key, values in applies.items())


def option(default, help: str, choices=None, applies: dict | None = None, derived: str | None = None):
    """A config field: its default, its help text, optional choices.

    applies: {field: values} when only runs whose `field` is one of `values` use it (else giving it
    is an error, and it is not logged); derived: where __post_init__ takes the value from when
    it is left unset, for --print-config (formatted with the config's fields)."""
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = list(choices)
    if applies:
        metadata["applies"] = {key: tuple(values) for key, values in applies.items()}
        metadata["help"] = f"{help} (only with {_applies_text(metadata['applies'])})"
    if derived:
        metadata["derived"] = derived
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


def build_parser(config_cls, prog: str | None = None, description: str | None = None,
                 defaults: dict | None = None) -> argparse.ArgumentParser:
    defaults = defaults or {}
    parser = ArgumentParser(prog=prog, description=description,
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


class _Refused(argparse.Action):
    """A flag a config leaves out because it would mean something else there (TF-IDF's --epochs):
    giving it is a one-line error that says what to use instead."""

    def __init__(self, option_strings, dest, why: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.why = why

    def __call__(self, parser, namespace, values, option_string=None):
        raise UserError(f"{option_string}: {self.why}")


_UNSET = object()  # argparse default: the flag was not given


def parse_config(config_cls, argv=None, prog=None, description=None, defaults=None,
                 defaults_source: str = "the script's defaults"):
    """Parse argv into config_cls; `defaults` lets a script set its own defaults (`defaults_source`
    says where they are written, for --print-config).

    Besides the fields' flags: --config FILE.yaml (field names to values; the command line
    overrides it) and --print-config (print the resolved config, each value with its source, and
    exit 0 before anything loads). A flag given, on the command line or in the file, that the
    config does not use (see `option`'s applies) is a one-line error."""
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    defaults = {k: v for k, v in (defaults or {}).items() if k in fields}
    parser = build_parser(config_cls, prog=prog, description=description, defaults=defaults)
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="read flags from this YAML file (`max_length: 256`; dashes or underscores); "
                             "flags on the command line override it. It is logged with the run (config/)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the config a run would use, each value with where it comes from (as "
                             "YAML that --config reads), and exit")
    refused = getattr(config_cls, "refused_flags", {})
    for name, why in refused.items():
        parser.add_argument(flag(name), nargs="?", action=_Refused, why=f"not a flag of {parser.prog}: {why}",
                            help=argparse.SUPPRESS)
    parser.parse_args(argv)  # --help, and every mistake on the command line, first
    parser.set_defaults(**{name: _UNSET for name in [*fields, *refused, "config", "print_config"]})
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not _UNSET}
    config_file, print_config = given.pop("config", None), given.pop("print_config", False)
    from_file = read_config_file(config_file, config_cls, parser.prog) if config_file else {}

    values, sources = {}, {}
    for name in fields:
        for layer, source in ((given, "command line"), (from_file, f"--config {config_file}"),
                              (defaults, defaults_source)):
            if name in layer:
                values[name], sources[name] = layer[name], source
                break
        else:
            sources[name] = _default_source(config_cls, name)
    try:
        config = config_cls(**values)
    except UserError as error:  # a value the file set is out of range: name the file and its key
        named, _, rest = str(error).partition(": ")
        from_file_only = {flag(name): name for name in from_file if name not in given}
        if named in from_file_only:
            raise UserError(f"--config {config_file}: {from_file_only[named]}: {rest}") from None
        raise
    for name, field in fields.items():
        if getattr(config, name) != values.get(name, field.default):
            sources[name] = field.metadata.get("derived", f"{type(config).__name__}.__post_init__") \
                .format_map(vars(config))
    check_applies(config, {**{name: f"--config {config_file}: {name}" for name in from_file},
                           **{name: flag(name) for name in given}})
    if print_config:
        print(describe_config(config, sources, parser.prog))
        raise SystemExit(0)
    if config_file:
        config.config_file = config_file
    return config


def _default_source(config_cls, name: str) -> str:
    """Where a field's default is written: the class that declares (or restates) it."""
    owner = next(cls for cls in config_cls.__mro__ if name in cls.__dict__.get("__annotations__", {}))
    return f"{owner.__name__} default, {owner.__module__.replace('.', '/')}.py"


def _expected(tp, optional: bool) -> str:
    if typing.get_origin(tp) is Literal:
        text = "one of " + ", ".join(map(str, typing.get_args(tp)))
    else:
        text = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            tp, getattr(tp, "__name__", str(tp)))
    return text + (" or null" if optional else "")


def _file_value(value, tp, field, where: str):
    """A value read from YAML as the field's type, converted as its flag would convert it
    (`lr: 2e-5` reads as a string in YAML 1.1: it is a number here)."""
    tp, optional = _unwrap_optional(tp)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    converted = _UNSET
    if value is None:
        converted = None if optional else _UNSET
    elif typing.get_origin(tp) is Literal:
        converted = value if isinstance(value, str) and value in typing.get_args(tp) else _UNSET
    elif tp is bool:
        converted = value if isinstance(value, bool) else _UNSET
    elif tp is str:
        converted = value if isinstance(value, str) else str(value) if is_number else _UNSET
    elif tp in (int, float):
        if is_number and (tp is float or isinstance(value, int)):
            converted = tp(value)
        elif isinstance(value, str):
            try:
                converted = tp(value)
            except ValueError:
                pass
    if converted is _UNSET:
        raise UserError(f"{where}: expected {_expected(tp, optional)}, got {value!r}")
    if "choices" in field.metadata and converted not in field.metadata["choices"]:
        raise UserError(f"{where}: expected one of {', '.join(map(str, field.metadata['choices']))}, "
                        f"got {value!r}")
    return converted


def read_yaml_mapping(path: str, where: str, expected: str) -> dict:
    """The mapping a YAML file holds; a file that cannot be read, is not YAML or holds anything
    else (an empty file too) is one line starting with `where` (`--config run.yaml`)."""
    try:
        import yaml
    except ImportError:
        raise UserError(f"{where}: PyYAML is not installed; run `make setup` (pip install -r requirements.txt)") \
            from None
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise UserError(f"{where}: cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
        what = f"{problem} at line {mark.line + 1}" if problem and mark else str(error).splitlines()[0]
        raise UserError(f"{where}: not valid YAML ({what})") from None
    if not isinstance(loaded, dict):
        got = "an empty file" if loaded is None else f"a {type(loaded).__name__}"
        raise UserError(f"{where}: expected {expected}, got {got}")
    return loaded


def read_config_file(path: str, config_cls, prog: str | None = None) -> dict:
    """{field: value} from a YAML mapping of field names (dashes or underscores) to values, each
    checked against its field's type: a mistake is one line naming the file and the key."""
    where = f"--config {path}"
    loaded = read_yaml_mapping(path, where, "a mapping of flags to values (e.g. `max_length: 256`)")
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    refused = getattr(config_cls, "refused_flags", {})
    script = prog or config_cls.__name__
    values = {}
    for key, value in loaded.items():
        name = str(key).replace("-", "_")
        if name in refused:
            raise UserError(f"{where}: {key}: not a flag of {script}: {refused[name]}")
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            raise UserError(f"{where}: unknown key {key!r}: {script} has no flag {flag(name)}"
                            + (f" (did you mean {close[0]}?)" if close else ""))
        if name in values:
            raise UserError(f"{where}: {key}: given twice (as {name} and {name.replace('_', '-')})")
        values[name] = _file_value(value, hints[name], fields[name], f"{where}: {key}")
    return values


# --- which fields a run uses -------------------------------------------------------

def not_applying(config, name: str, who: str = "this run has") -> str | None:
    """None when `config` uses field `name`; else why not, as the end of a one-line error:
    `applies to --model capsule-lstm only (this run has --model lstm)`."""
    field = config.__dataclass_fields__.get(name.partition(".")[0])
    for key, values in (field.metadata.get("applies", {}) if field else {}).items():
        value = getattr(config, key)
        if value not in values:
            return f"applies to {flag(key)} {_one_of(values)} only ({who} {flag(key)} {value})"
    return None


def check_applies(config, given: dict, who: str = "this run has") -> None:
    """given: field -> how it was given (`--num-capsules`); one it does not apply to is a UserError."""
    for name, where in given.items():
        reason = not_applying(config, name, who)
        if reason:
            raise UserError(f"{where}: {reason}")


def applicable(config) -> dict:
    """The config flattened (`flatten`), less the fields this run does not use: what a run logs."""
    return {name: value for name, value in flatten(config).items() if not_applying(config, name) is None}


def describe_config(config, sources: dict, prog: str | None = None) -> str:
    """What --print-config prints: each field that applies as a YAML line, its source after `#`."""
    import yaml

    shown = applicable(config)
    lines = [f"{yaml.safe_dump({name: value}, width=10**6).strip()}" for name, value in shown.items()]
    width = max(map(len, lines), default=0)
    out = [f"# {prog or type(config).__name__}: the config a run would use; after each value, where it comes "
           "from (YAML: --config reads it back)"]
    out += [f"{line:<{width}}  # {sources.get(name, '')}" for line, name in zip(lines, shown)]
    unused = [flag(name) for name in flatten(config) if name not in shown]
    if unused:
        out.append(f"# not used by this run: {' '.join(unused)}")
    return "\n".join(out)


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


def require_run_id(field: str, value: str | None) -> None:
    """An optional flag naming an MLflow run (--resume, --teacher): None or 32 lowercase hex digits."""
    require(value is None or bool(re.fullmatch(r"[0-9a-f]{32}", value)), field, "an MLflow run id (32 hex digits)",
            value)


def _default_data_dir() -> str:
    from .paths import data_dir
    return str(data_dir())


@dataclasses.dataclass
class RunConfig:
    """What every training script accepts."""
    # The --config file the flags were read from (set by parse_config; the run logs it). Not a field:
    # it is not a setting of the model, and a trial or a resumed run need not repeat it.
    config_file: ClassVar[str | None] = None

    data_dir: str = option(_default_data_dir(), "folder holding Kaggle's files (`make data` fills data/)")
    limit: int | None = option(None, "at most N training and N test reviews (stratified; word2vec then "
                                     "reads at most 2N unlabelled ones): for quick runs and tests")
    val_fraction: float = option(0.2, "share of the labelled reviews held out for validation (stratified)")
    seed: int = option(42, "seed for the split, initialisation, batching and dropout")
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


@dataclasses.dataclass
class NetworkConfig(RunConfig):
    """What every script that trains a network with the shared loop accepts.

    The embedding and encoder families want other defaults for these; they
    restate a field with `new_default` and nothing else."""
    epochs: int = option(5, "maximum training epochs (early stopping may end sooner)")
    max_length: int = option(400, "tokens kept per review")
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
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        require(self.max_length >= 8, "max_length", "an integer >= 8", self.max_length)
        require_run_id("resume", self.resume)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.eval_batch_size >= 1, "eval_batch_size", "an integer >= 1", self.eval_batch_size)
        require(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        require(self.grad_clip >= 0, "grad_clip", "a number >= 0 (0: off)", self.grad_clip)
        require(self.patience >= 0, "patience", "an integer >= 0 (0: never stop early)", self.patience)


# --- the recipes' configs (imdb_sentiment/families.py names which family uses which) ---

# What the word-vector networks read (models.py's builders): every one but the CNN has a
# recurrent or Transformer width and depth; word2vec's settings apply when it makes the vectors.
NOT_CNN = {"model": ("lstm", "gru", "cnn-lstm", "attention-lstm", "capsule-lstm", "transformer")}
WORD2VEC = {"embeddings": ("word2vec",)}


@dataclasses.dataclass
class EmbeddingConfig(NetworkConfig):
    """Settings of the word-embedding families (each script sets its own defaults)."""
    model: str = option("lstm", "model architecture: one of the MODELS registry (models.py), each the name of "
                                "an embedding family")
    lr: float = option(2e-3, "peak learning rate (AdamW)")
    min_freq: int = option(2, "words seen fewer times in the training split become <unk>")
    max_vocab: int | None = option(None, "keep at most this many words")
    embeddings: str = option("word2vec", "word2vec (trained here on train + unlabelled reviews, cached), "
                                         "random, or the path of a GloVe / word2vec file")
    embedding_dim: int = option(200, "word-vector size (must match a vectors file)")
    freeze_embeddings: bool = option(False, "keep the word vectors fixed while training")
    w2v_epochs: int = option(5, "word2vec training epochs", applies=WORD2VEC)
    w2v_window: int = option(5, "word2vec context window", applies=WORD2VEC)
    w2v_unlabeled: bool = option(True, "train word2vec on the 50,000 unlabelled reviews too (at most 2N with "
                                       "--limit N), not the training split alone", applies=WORD2VEC)
    hidden_size: int = option(128, "recurrent hidden size per direction / model width", applies=NOT_CNN)
    num_layers: int = option(1, "stacked recurrent or encoder layers", applies=NOT_CNN)
    dropout: float = option(0.3, "dropout before the classifier and between layers")
    embedding_dropout: float = option(0.2, "dropout on the word vectors")
    num_filters: int = option(100, "convolution filters per width", applies={"model": ("cnn", "cnn-lstm")})
    filter_sizes: str = option("3,4,5", "comma-separated convolution widths (cnn-lstm uses the first)",
                               applies={"model": ("cnn", "cnn-lstm")})
    pool_size: int = option(2, "max-pool width along time between convolution and LSTM (1: none)",
                            applies={"model": ("cnn-lstm",)})
    attention_dim: int = option(128, "size of the additive attention's hidden layer",
                                applies={"model": ("attention-lstm",)})
    num_capsules: int = option(10, "output capsules", applies={"model": ("capsule-lstm",)})
    capsule_dim: int = option(16, "size of each output capsule", applies={"model": ("capsule-lstm",)})
    routing_iterations: int = option(3, "dynamic routing iterations", applies={"model": ("capsule-lstm",)})
    num_heads: int = option(4, "attention heads (must divide --hidden-size, the model width)",
                            applies={"model": ("transformer",)})
    feedforward_dim: int = option(512, "feed-forward size in each encoder layer", applies={"model": ("transformer",)})

    @property
    def filter_size_list(self) -> list[int]:
        return [int(part) for part in self.filter_sizes.split(",")]

    def __post_init__(self):
        super().__post_init__()
        # Each network is an embedding family (its run is tagged with the name): checked against the
        # registry's data, so a config is checked without loading torch (--print-config).
        models = sorted(name for name, family in FAMILIES.items() if family.recipe == "embedding")
        require(self.model in models, "model", f"one of {models}", self.model)
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
LORA = {"method": ("lora",)}  # what the LoRA settings apply to (encoders/peft_methods.py, unsloth's loader)


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
    lora_r: int = option(8, "LoRA rank", applies=LORA)
    lora_alpha: int = option(16, "LoRA scaling numerator (scale = alpha / r)", applies=LORA)
    lora_dropout: float = option(0.1, "dropout on the LoRA branch", applies=LORA)
    target_modules: str = option("auto", "comma-separated module names LoRA adapts; auto: the "
                                         "attention projections of the architecture (LORA_TARGETS)", applies=LORA)
    num_virtual_tokens: int = option(20, "virtual tokens put before each review",
                                     applies={"method": ("ptuning", "prompt", "prefix")})
    prompt_init_text: str | None = option(None, "initialise the virtual tokens from this text (default: random)",
                                          applies={"method": ("prompt",)})
    encoder_hidden_size: int = option(128, "hidden size of the p-tuning prompt encoder / prefix MLP",
                                      applies={"method": ("ptuning", "prefix")})
    regulariser: Literal["none", "rdrop", "scl"] = option(
        "none", "extra training loss: R-Drop or supervised contrastive (inference unchanged)")
    rdrop_alpha: float = option(1.0, "weight of the symmetric KL between two dropout passes",
                                applies={"regulariser": ("rdrop",)})
    scl_temperature: float = option(0.3, "temperature of the contrastive softmax", applies={"regulariser": ("scl",)})
    scl_lambda: float = option(0.5, "weight of the contrastive loss added to CE", applies={"regulariser": ("scl",)})
    batch_size: int = new_default(NetworkConfig, "batch_size", 16)
    eval_batch_size: int = new_default(NetworkConfig, "eval_batch_size", 64)
    grad_accumulation: int = option(1, "batches whose gradients add up before one optimiser step "
                                            "(the step's batch: --batch-size times this)")
    gradient_checkpointing: bool = option(False, "recompute activations in backward: less memory, slower")
    lr: float | None = option(None, "peak learning rate (default per method: DEFAULT_LR)",
                              derived="DEFAULT_LR of --method {method}, imdb_sentiment/config.py")
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
    """Settings of the TF-IDF NB-LR pipeline (linear.py): one fit, no epochs."""
    # --epochs would mean the solver's pass cap here and epochs of training elsewhere: it is --max-iter.
    refused_flags: ClassVar[dict] = {"epochs": "the linear model fits once, with no epochs; "
                                               "--max-iter caps its solver's passes"}
    ngram_max: int = option(3, "longest word n-gram used as a feature")
    hash_bits: int = option(22, "features are hashed into 2**hash_bits columns")
    min_df: int = option(2, "n-grams in fewer training reviews than this get no weight")
    C: float = option(64.0, "inverse regularisation strength of the logistic regression")
    # Well above the passes the full data takes to converge (logged per run as solver_passes).
    max_iter: int = option(300, "passes the logistic regression's solver (liblinear) makes at most; one that "
                                "stops here before converging says so on stderr")

    max_length: int = option(2500, "tokens kept per review, from its start (a few reviews are longer)")

    def __post_init__(self):
        super().__post_init__()
        require(self.max_iter >= 1, "max_iter", "an integer >= 1", self.max_iter)
        require(self.max_length >= 8, "max_length", "an integer >= 8", self.max_length)
        require(1 <= self.ngram_max <= 5, "ngram_max", "an integer from 1 to 5", self.ngram_max)
        require(16 <= self.hash_bits <= 26, "hash_bits", "an integer from 16 to 26", self.hash_bits)
        require(self.C > 0, "C", "a positive number", self.C)


@dataclasses.dataclass
class EnsembleConfig(RunConfig):
    """Settings of the ensemble family: which finished runs it stacks."""
    families: str | None = option(None, "comma-separated families whose run that stands for the family "
                                        "(store.select_run: full data, then validation accuracy) is a member; "
                                        "default: every family's")
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
    teacher_precision: Literal["auto", "fp32", "bf16", "int8"] = option(
        "auto", "what the teacher's encoders score in. auto: bf16 where the device has it natively (`make "
                "bench-predict` on MiniLM at 320 tokens: 1.85x fp32's speed, probabilities within 0.007, no label "
                "changed), else fp32, which reproduces the teacher's logged probabilities; int8 was as fast but "
                "changed 3% of the labels. The cache is kept per precision")

    def __post_init__(self):
        super().__post_init__()
        require(self.temperature > 0, "temperature", "a positive number", self.temperature)
        require(0.0 <= self.alpha <= 1.0, "alpha", "a number in [0, 1]", self.alpha)
        require_run_id("teacher", self.teacher)


@dataclasses.dataclass
class Doc2VecConfig(RunConfig):
    """Settings of the doc2vec family: PV-DBOW document vectors (gensim Doc2Vec) and a logistic
    regression on them (recipes/doc2vec.py)."""
    vector_size: int = option(100, "size of a document vector")
    epochs: int = option(20, "passes of Doc2Vec training over the documents")
    dbow_words: bool = option(True, "train word vectors skip-gram style alongside the document vectors "
                                    "(slower; usually better document vectors)")
    window: int = option(10, "skip-gram context window of the word co-training", applies={"dbow_words": (True,)})
    ngrams: int = option(1, "1: a review's words are its tokens; 2: its adjacent word pairs too (`good_film`)",
                         choices=(1, 2))
    min_count: int = option(2, "tokens seen fewer times in the training documents are dropped")
    negative: int = option(5, "negative samples per predicted token")
    sample: float = option(1e-4, "down-sampling threshold of frequent tokens (0: none)")
    infer_epochs: int = option(20, "passes of inference over a review whose vector is inferred (every split's)")
    C: float = option(1.0, "inverse regularisation strength of the logistic regression")
    unlabeled: bool = option(True, "also train the vectors on the 50,000 unlabelled reviews (at most 2N with "
                                   "--limit N)")
    transductive: bool = option(False, "also train the vectors on the test reviews' text (never their labels), as "
                                       "Le & Mikolov (2014) did: such a run is tagged doc2vec-transductive and "
                                       "reported in its own row")
    workers: int = option(0, "gensim training threads (0: every core); only 1 gives the same vectors on every run "
                             "of a seed (threads race)")

    def __post_init__(self):
        super().__post_init__()
        require(self.vector_size >= 2, "vector_size", "an integer >= 2", self.vector_size)
        require(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        require(self.window >= 1, "window", "an integer >= 1", self.window)
        require(self.min_count >= 1, "min_count", "an integer >= 1", self.min_count)
        require(self.negative >= 1, "negative", "an integer >= 1", self.negative)
        require(0.0 <= self.sample < 1.0, "sample", "a number in [0, 1)", self.sample)
        require(self.infer_epochs >= 1, "infer_epochs", "an integer >= 1", self.infer_epochs)
        require(self.C > 0, "C", "a positive number", self.C)
        require(self.workers >= 0, "workers", "an integer >= 0 (0: every core)", self.workers)


@dataclasses.dataclass
class MlmConfig(RunConfig):
    """Settings of the mlm family: masked-LM pretraining of an encoder on the training split and the
    unlabelled reviews (imdb_sentiment/pretraining.py), never on validation or test text."""
    refused_flags: ClassVar[dict] = {"epochs": "pretraining runs --max-steps optimiser steps, not epochs"}
    model: str = option("bert-base-uncased", "checkpoint to pretrain further: a Hugging Face name or a local folder")
    max_length: int = option(128, "tokens per training window; a longer review is cut into windows")
    batch_size: int = option(32, "windows per optimiser step")
    # all-MiniLM-L6-v2 in bf16 on 2 AMD EPYC cores: 1,565 tokens/s, about 2.3 s a step of 32 windows
    # with the held-out measurements, so 1,500 steps fit an hour with the tokenising and the model logged.
    max_steps: int = option(1500, "optimiser steps (the run's length; a step is --batch-size windows)")
    lr: float = option(1e-4, "peak learning rate (AdamW)")
    weight_decay: float = option(0.01, "AdamW weight decay (none on biases and norm weights)")
    warmup_ratio: float = option(0.06, "share of steps for linear warm-up, then linear decay")
    mask_probability: float = option(0.15, "share of tokens masked (of those 80% [MASK], 10% random, 10% kept)")
    heldout: int = option(500, "unlabelled reviews held out of training to measure the masked-LM loss on")
    eval_every: int = option(250, "steps between measurements of the held-out loss")
    checkpoint_every: int = option(100, "steps between checkpoints (a killed run resumes from the last)")
    unlabeled: bool = option(True, "also pretrain on the 50,000 unlabelled reviews (at most 2N with --limit N)")
    labeled: bool = option(True, "also pretrain on the training split's text; without it the encoder has read no "
                                 "labelled review, so a fine-tuning run may use any split (--seed, --limit)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", "auto: bf16 on GPUs that have it, fp16 on CUDA GPUs that do not, bf16 on a CPU with native "
                "bf16 (measured faster for MiniLM), else fp32")
    cpu_threads: int = option(0, "torch CPU threads (0: all cores)")
    resume: str | None = option(None, "RUN_ID: go on with this unfinished run from its last checkpoint, in the "
                                      "same MLflow run; give the flags it started with")
    keep_checkpoints: bool = option(False, "keep the checkpoints once the run finishes (default: removed)")

    def __post_init__(self):
        super().__post_init__()
        require(self.max_length >= 16, "max_length", "an integer >= 16", self.max_length)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.max_steps >= 1, "max_steps", "an integer >= 1", self.max_steps)
        require(self.lr > 0, "lr", "a positive number", self.lr)
        require(self.weight_decay >= 0, "weight_decay", "a number >= 0", self.weight_decay)
        require(0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "a number in [0, 1)", self.warmup_ratio)
        require(0.0 < self.mask_probability < 1.0, "mask_probability", "a number in (0, 1)", self.mask_probability)
        require(self.heldout >= 1, "heldout", "an integer >= 1", self.heldout)
        require(self.eval_every >= 1, "eval_every", "an integer >= 1", self.eval_every)
        require(self.checkpoint_every >= 1, "checkpoint_every", "an integer >= 1", self.checkpoint_every)
        require(self.cpu_threads >= 0, "cpu_threads", "an integer >= 0", self.cpu_threads)
        require_run_id("resume", self.resume)
        require(self.labeled or self.unlabeled, "labeled", "some text to pretrain on (not with --no-unlabeled too)",
                self.labeled)


@dataclasses.dataclass
class SelfTrainConfig(TfidfConfig):
    """Settings of the self-train family: a TF-IDF NB-LR student on the labelled split and the
    unlabelled reviews labelled by a teacher, then by itself (recipes/self_train.py)."""
    teacher: str | None = option(None, "MLflow run id of the teacher that labels the unlabelled reviews in the "
                                       "first round (any finished run that logged a model); default: the best "
                                       "finished ensemble run")
    targets: Literal["hard", "soft"] = option(
        "hard", "hard: the label of each unlabelled review the labeller is at least --threshold sure of; "
                "soft: its probability, for every review")
    threshold: float = option(0.9, "confidence a pseudo-label needs (max(p, 1 - p))", applies={"targets": ("hard",)})
    rounds: int = option(2, "rounds of fitting; from the second on, the last student labels the unlabelled reviews")
    teacher_precision: Literal["auto", "fp32", "bf16", "int8"] = option(
        "auto", "what the teacher's encoders score in (as train/distill.py's --teacher-precision)")

    def __post_init__(self):
        super().__post_init__()
        require(0.5 <= self.threshold < 1.0, "threshold", "a number in [0.5, 1)", self.threshold)
        require(self.rounds >= 1, "rounds", "an integer >= 1", self.rounds)
        require_run_id("teacher", self.teacher)
