"""What a study searches and what it optimises: parameters as plain data, the
four presets, spaces given on the command line, the objectives a run reports.

A space maps a field of the family's config to a Param, written
`--param NAME=KIND:ARGS` or, the same strings, in a YAML file (`--space`):

    lr=loguniform:1e-5:1e-3        a float on a log scale
    dropout=uniform:0.1:0.5        a float (uniform:LOW:HIGH:STEP for a grid)
    hidden_size=int:64:256:64      an integer, step 64 (int:LOW:HIGH for step 1)
    embedding_dim=logint:50:300    an integer on a log scale
    batch_size=choice:16,32        one of the values (a YAML list says the same)

Params are plain data so that `--help` answers without importing Optuna; a
study turns them into Optuna distributions when it starts.
"""

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Literal

from ..config import flag, read_yaml_mapping
from ..errors import UserError

SYNTAX = "NAME=KIND:ARGS with KIND uniform, loguniform, int, logint or choice (e.g. lr=loguniform:1e-5:1e-3)"


@dataclass(frozen=True)
class Param:
    kind: Literal["int", "float", "choice"]
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(self.low, self.high, step=self.step or 1, log=self.log)
        return FloatDistribution(self.low, self.high, step=self.step, log=self.log)

    def suggest(self, trial, name: str):
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return value in self.choices
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def extremes(self) -> list:
        """The values a trial may train with at the edges: each bound, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]


def loguniform(low, high):
    return Param("float", low, high, log=True)


@dataclass(frozen=True)
class Preset:
    """A study of the design card: its space and which families it is for."""
    space: dict
    family: str                    # the default --family
    cpu_family: str | None = None  # the default --family without a GPU (same recipe; see the CPU checkpoint)
    requires: dict | None = None   # training settings a family must have (None: any family)
    # The reference trial: these values, the family's defaults for the other searched fields.
    reference: dict = field(default_factory=dict)

    def check(self, name: str, family: str, settings: dict) -> None:
        wrong = {k: v for k, v in (self.requires or {}).items() if settings.get(k) != v}
        if wrong:
            needs = ", ".join(f"{flag(k)} {v}" for k, v in self.requires.items())
            raise UserError(f"--family {family}: the {name} study is for families trained with {needs} "
                            f"(e.g. {self.family})")


PRESETS = {
    # r 16, alpha 32: the reference's LoRA setting (its unsloth rows, families.py); lr: our LoRA
    # default 5e-4 (config.DEFAULT_LR). Without a GPU the packaged MiniLM, a BERT, is trained:
    # bert-lora, so the runs are not tagged deberta-lora.
    "lora": Preset({"lora_r": Param("choice", choices=(4, 8, 16, 32)),
                    "lora_alpha": Param("choice", choices=(8, 16, 32, 64)),
                    "lr": loguniform(1e-5, 1e-3)},
                   "deberta-lora", cpu_family="bert-lora", requires={"method": "lora"},
                   reference={"lora_r": 16, "lora_alpha": 32}),
    # R-Drop alpha 1.0, SCL temperature 0.3 and lambda 0.5: our defaults (EncoderConfig); the
    # reference's values for them are not known here.
    "rdrop": Preset({"rdrop_alpha": loguniform(0.1, 5.0)}, "rdrop", requires={"regulariser": "rdrop"}),
    "scl": Preset({"scl_temperature": loguniform(0.05, 1.0), "scl_lambda": Param("float", 0.1, 0.9)},
                  "scl", requires={"regulariser": "scl"}),
    # The family's own length (its config default): 512 for encoders; 400 for the word-vector
    # families, which is not in the space, so they get no reference trial.
    "max_length": Preset({"max_length": Param("choice", choices=(64, 128, 256, 384, 512))}, "lstm"),
}

SEARCH_SPACES = {name: preset.space for name, preset in PRESETS.items()}


# ---------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    direction: Literal["maximize", "minimize"]
    metric: str       # the final metric of the trial's run that holds it
    help: str


# Only what training and validation tell: selecting on a test metric would leak the test reviews.
OBJECTIVES = {
    "val_acc": Objective("maximize", "best_val_acc", "best validation accuracy"),
    "device_hours": Objective("minimize", "device_hours", "the run's wall time x devices"),
    "train_seconds": Objective("minimize", "train_seconds", "time in the training loop"),
    "trainable_params": Objective("minimize", "trainable_params", "parameters trained"),
}


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name.startswith("test"):
            raise UserError(f"--objectives {text}: {name} is measured on the test reviews; choosing by it "
                            f"would leak them into the choice (use {', '.join(OBJECTIVES)})")
        if name not in OBJECTIVES:
            raise UserError(f"--objectives {text}: unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    if not names or len(set(names)) != len(names) or len(names) > 3:
        raise UserError(f"--objectives {text}: expected one to three different objectives, e.g. "
                        f"val_acc or val_acc,device_hours")
    return names


# ---------------------------------------------------------------- spaces from the command line

# Fields that are no training setting (where data and runs go, how a worker shows progress).
NOT_SEARCHABLE = ("data_dir", "run_name", "experiment", "device", "progress", "resume", "register")


def field_type(config_cls, name: str):
    """The type a config field holds (X for `X | None`)."""
    tp = typing.get_type_hints(config_cls)[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else tp
    return tp


def _value(text: str, tp, where: str):
    """A choice typed as its field: 16 for an int field, true for a bool one."""
    try:
        if typing.get_origin(tp) is Literal:
            allowed = typing.get_args(tp)
            if text not in allowed:
                raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
            return text
        if tp is bool:
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError("expected true or false")
            return lowered == "true"
        return tp(text)
    except ValueError as error:
        raise UserError(f"{where}: {text!r} is not a value of this field ({error})") from None


def _number(text: str, kind: str, where: str):
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{where}: {text!r} is not a number") from None
    if kind == "int":
        if value != int(value):
            raise UserError(f"{where}: {text!r} is not an integer")
        return int(value)
    return value


def param_from_text(name: str, spec, config_cls, where: str) -> Param:
    """A Param for config field `name` from KIND:ARGS (or a YAML list of choices), checked against the field."""
    tp = field_type(config_cls, name)
    numeric = "int" if tp is int else "float" if tp is float else None
    if isinstance(spec, list):
        spec = "choice:" + ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise UserError(f"{where}: expected {SYNTAX}")
    kind, _, args = spec.partition(":")
    if kind == "choice":
        choices = tuple(_value(text.strip(), tp, where) for text in args.split(",") if text.strip())
        if not choices or len(set(choices)) != len(choices):
            raise UserError(f"{where}: expected different values separated by commas, e.g. choice:16,32")
        return Param("choice", choices=choices)
    wanted = {"uniform": "float", "loguniform": "float", "int": "int", "logint": "int"}.get(kind)
    if wanted is None:
        raise UserError(f"{where}: unknown kind {kind!r}; expected {SYNTAX}")
    if numeric is None:
        raise UserError(f"{where}: {name} is not a number ({getattr(tp, '__name__', tp)}): use choice:A,B")
    if wanted != numeric:
        use = "int:LOW:HIGH[:STEP], logint:LOW:HIGH" if numeric == "int" else "uniform:LOW:HIGH[:STEP], " \
                                                                            "loguniform:LOW:HIGH"
        raise UserError(f"{where}: {name} is {'an integer' if numeric == 'int' else 'a float'}: use {use} "
                        f"or choice:A,B")
    parts = args.split(":")
    log = kind.startswith("log")
    if len(parts) not in ((2,) if log else (2, 3)):
        raise UserError(f"{where}: expected {kind}:LOW:HIGH" + ("" if log else "[:STEP]"))
    low, high, *step = (_number(part, numeric, where) for part in parts)
    step = step[0] if step else None
    if not low < high:
        raise UserError(f"{where}: empty range (LOW {low} must be below HIGH {high})")
    if log and low <= 0:
        raise UserError(f"{where}: a log scale needs LOW > 0, got {low}")
    if step is not None and not 0 < step <= high - low:
        raise UserError(f"{where}: STEP must be positive and at most HIGH - LOW, got {step}")
    if not all(math.isfinite(v) for v in (low, high)):
        raise UserError(f"{where}: bounds must be finite")
    return Param(numeric, low, high, step, log)


def read_space_file(path: str) -> dict:
    """{name: spec} from a YAML mapping of field names to KIND:ARGS strings or lists of choices."""
    expected = "a mapping of config fields to spaces, e.g. `lr: loguniform:1e-5:1e-3`"
    loaded = read_yaml_mapping(path, f"--space {path}", expected)
    if not loaded:
        raise UserError(f"--space {path}: expected {expected}, got an empty mapping")
    return {str(name): spec for name, spec in loaded.items()}


def user_space(params: tuple, space_file: str | None, config_cls, family: str) -> dict:
    """The Params that --param and --space give, checked against the family's config."""
    given = {}
    sources = {}
    if space_file:
        for name, spec in read_space_file(space_file).items():
            given[name], sources[name] = spec, f"--space {space_file}: {name}"
    for text in params:
        name, equals, spec = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UserError(f"--param {text}: expected {SYNTAX}")
        if name in sources:
            raise UserError(f"--param {text}: {name} is already searched ({sources[name]})")
        given[name], sources[name] = spec.strip(), f"--param {text}"
    fields = [f.name for f in dataclasses.fields(config_cls) if f.init]
    space = {}
    for name, spec in given.items():
        where = sources[name]
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{where}: the {family} family's config ({config_cls.__name__}) has no field "
                            f"{name}{hint}")
        if name in NOT_SEARCHABLE:
            raise UserError(f"{where}: {name} says where or how a worker runs, not how a model trains: "
                            f"it cannot be searched")
        space[name] = param_from_text(name, spec, config_cls, where)
    return space


def describe(space: dict) -> str:
    """A space as the --param strings that give it."""
    def one(param: Param) -> str:
        if param.kind == "choice":
            return "choice:" + ",".join(map(str, param.choices))
        kind = ("log" if param.log else "") + ("int" if param.kind == "int" else "uniform")
        return f"{kind}:{param.low}:{param.high}" + (f":{param.step}" if param.step else "")
    return " ".join(f"{name}={one(param)}" for name, param in space.items())
