"""A study's command line: the search flags (SearchConfig) merged with the
family's training config, minus the fields the study searches (setting one is
an error, not silently ignored), with CPU-sized defaults on a machine without
a GPU. Nothing heavy loads until the flags are parsed, so `--help` answers at
once; then the device is detected (torch) and the space checked against the
config.
"""

import dataclasses
import math
import sys
import typing
from dataclasses import dataclass
from typing import Literal

from ..config import build_parser, check_applies, flag, option, require
from ..errors import UserError
from ..families import Family, PackagedCheckpoint, family_tag, resolve
from .spaces import PRESETS, describe, parse_objectives, user_space


@dataclass
class SearchConfig:
    """What every search script accepts, besides the training flags it passes through."""
    family: str = option("lstm", "model family the trials train (as train/<family>.py does)")
    param: tuple = option((), "NAME=KIND:ARGS: also search this field of the family's config (repeat the "
                              "flag): uniform:LOW:HIGH[:STEP], loguniform:LOW:HIGH, int:LOW:HIGH[:STEP], "
                              "logint:LOW:HIGH or choice:A,B,...; e.g. --param lr=loguniform:1e-5:1e-3")
    space: str | None = option(None, "YAML file mapping config fields to spaces as --param writes them "
                                     "(`lr: loguniform:1e-5:1e-3`; a list is a choice)")
    objectives: str = option("val_acc", "what the study optimises, comma-separated: val_acc (maximised), "
                                        "device_hours, train_seconds, trainable_params (minimised); two or "
                                        "three make a multi-objective study (Pareto front, no pruning)")
    reference_trial: bool = option(True, "a new study of a preset trains the reference project's setting "
                                         "first (our defaults where it has none), so it never ends worse")
    study_name: str | None = option(None, "Optuna study name (default: <study>-<family>); running the "
                                          "same name again resumes that study")
    storage: str | None = option(None, "SQLAlchemy URL of the study storage (default: a SQLite file "
                                       "mlflow/optuna.db); PostgreSQL for workers on several machines")
    budget_gpu_hours: float = option(4.0, "device-hours the whole study may spend, over all workers and "
                                          "restarts (trial wall time x GPUs; a CPU-only trial is one device)")
    n_trials: int = option(20, "at most this many trials in the whole study (budget or count, whichever "
                               "comes first)")
    pruner: Literal["median", "hyperband", "none"] = option("median", "stops trials whose validation "
                                                                      "accuracy lags, epoch by epoch")
    heartbeat_seconds: int = option(60, "a running trial records a heartbeat this often")
    grace_seconds: int | None = option(None, "a trial without heartbeat for this long is marked failed and "
                                             "run again (default: 3 x --heartbeat-seconds)")
    max_retries: int = option(2, "times a trial whose worker died is run again")
    confirm: int = option(3, "after the search, train the best and the reference setting again with this many "
                             "new seeds each and compare their test accuracy (0: no confirm step); the budget "
                             "keeps room for these runs")

    def __post_init__(self):
        require(math.isfinite(self.budget_gpu_hours) and self.budget_gpu_hours > 0, "budget_gpu_hours",
                "a positive number of device-hours", self.budget_gpu_hours)
        require(self.n_trials >= 1, "n_trials", "an integer >= 1", self.n_trials)
        require(self.heartbeat_seconds >= 1, "heartbeat_seconds", "an integer >= 1", self.heartbeat_seconds)
        if self.grace_seconds is None:
            self.grace_seconds = 3 * self.heartbeat_seconds
        require(self.grace_seconds > self.heartbeat_seconds, "grace_seconds",
                f"more than --heartbeat-seconds ({self.heartbeat_seconds})", self.grace_seconds)
        require(self.max_retries >= 0, "max_retries", "an integer >= 0", self.max_retries)
        require(self.confirm >= 0, "confirm", "an integer >= 0 (0: no confirm step)", self.confirm)
        require(self.study_name is None or self.study_name.strip() != "", "study_name", "a non-empty name",
                self.study_name)
        parse_objectives(self.objectives)

    @property
    def objective_names(self) -> tuple[str, ...]:
        return parse_objectives(self.objectives)

    @property
    def pruner_in_use(self) -> str:
        """The pruner stops trials by validation accuracy per epoch: only a val_acc study has one."""
        return self.pruner if self.objective_names == ("val_acc",) else "none"


@dataclass
class Setup:
    """Everything a study runs with, once its command line is read and checked."""
    search: SearchConfig
    config: object        # the training config every trial starts from (searched fields: the family's defaults)
    family: Family
    tag: str              # the family tag the trials' runs carry (families.family_tag)
    space: dict           # config field -> spaces.Param
    study_name: str
    preset: str | None    # a key of PRESETS, or None for a space given only by --param / --space
    reference: dict | None  # the reference trial's values (None: none wanted)


# Training flags a trial never takes from the command line: each trial is a new run the study names.
NOT_FOR_TRIALS = ("run_name", "resume", "register")
_UNSET = object()  # argparse default: the flag was not given


def _fields_of(cls, leave_out=()) -> list:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], dataclasses.field(default=f.default, metadata=f.metadata))
            for f in dataclasses.fields(cls) if f.init and f.name not in leave_out]


def _parser(fields, prog, description=None, defaults=None):
    """The parser of these fields, with --param as a repeatable flag."""
    parser = build_parser(dataclasses.make_dataclass("SearchCommandLine", fields), prog=prog,
                          description=description, defaults=defaults)
    parser.add_argument("--param", action="append", metavar="NAME=KIND:ARGS",
                        help=SearchConfig.__dataclass_fields__["param"].metadata["help"])
    return parser


def cpu_study_defaults(family: Family, overrides: dict, space: dict, method: str | None = None) -> dict:
    """What a study without a GPU trains with unless its flags say otherwise (the recipe's
    cpu_study): the packaged checkpoint only for a family of its architecture, since a run's
    tag names the family's architecture; a value given per method only for the trials' method
    (`method`, else the family's with its `overrides`, as resolve returns them)."""
    method = method or overrides.get("method") or family.defaults.get("method", "none")
    found = {}
    for key, value in family.recipe_of().cpu_study.items():
        if isinstance(value, dict):  # per method; when the method is searched, each trial's own default
            value = None if "method" in space else value.get(method)
        if key in space or value is None or (isinstance(value, PackagedCheckpoint)
                                             and value.architecture != family.architecture):
            continue
        found[key] = value
    return found


def cpu_family_of(preset, family_name: str, family_given: bool, model_given: bool) -> str:
    """The family a study without a GPU trains: a preset's cpu_family when neither the family nor the
    checkpoint was chosen (the packaged checkpoint is then trained, under its architecture's tag)."""
    return preset.cpu_family if preset and preset.cpu_family and not (family_given or model_given) \
        else family_name


def _shown(values: dict) -> str:
    return " ".join(f"{flag(k)} {v.label + ' (packaged, no download)' if isinstance(v, PackagedCheckpoint) else v}"
                    for k, v in values.items())


def parse_search_args(preset_name: str | None, argv=None, prog: str | None = None,
                      description: str | None = None) -> Setup:
    """The Setup of one command line of a preset's script (preset_name) or of search/custom.py (None)."""
    preset = PRESETS[preset_name] if preset_name else None
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or f"search/{preset_name or 'custom'}.py"
    wants_help = "-h" in argv or "--help" in argv

    # 1. The search flags first: the family decides which training flags exist, --param and --space
    #    what is searched.
    search_fields = _fields_of(SearchConfig, leave_out=("param",))
    pre = _parser(search_fields, prog, defaults={f[0]: _UNSET for f in search_fields}).parse_known_args(
        [a for a in argv if a not in ("-h", "--help")])[0]
    given_family = pre.family is not _UNSET
    family_name = pre.family if given_family else preset.family if preset else SearchConfig.family
    family, overrides = resolve(family_name)
    if not family.recipe_of().classifier:
        raise UserError(f"--family {family_name}: its runs make no classifier to score a trial by "
                        "(it pretrains an encoder); search the family that fine-tunes it")
    config_cls = family.recipe_of().config_class()
    if preset:
        preset.check(preset_name, family_name, {**family.defaults, **overrides})
        fields = {f.name for f in dataclasses.fields(config_cls)}
        unknown = sorted(set(preset.space) - fields)
        if unknown:
            raise UserError(f"the {preset_name} study searches {', '.join(unknown)}, which the {family_name} "
                            f"family's config ({config_cls.__name__}) does not have")
    space = dict(preset.space) if preset else {}
    space.update(user_space(tuple(pre.param or ()), None if pre.space is _UNSET else pre.space, config_cls,
                            family_name))
    if not space and not wants_help:
        raise UserError("nothing to search: give --param NAME=KIND:ARGS (repeatable) or --space FILE.yaml")
    for name in space:
        flags = (flag(name), "--no-" + name.replace("_", "-"))
        if any(arg in flags or arg.startswith(flag(name) + "=") for arg in argv):
            who = f"the {preset_name} study" if preset and preset.space.get(name) == space[name] \
                else "--param/--space"
            raise UserError(f"{flag(name)}: {who} searches it, so it cannot be set")

    # 2. The whole command line. --help shows the defaults of a GPU machine, and those of a CPU.
    cpu_family_name = cpu_family_of(preset, family_name, given_family, model_given=False)
    switch = f"--family {cpu_family_name} " if cpu_family_name != family_name else ""
    train_fields = _fields_of(config_cls, leave_out={*space, *NOT_FOR_TRIALS})
    fields = search_fields + train_fields
    parser = _parser(fields, prog, description,
                     defaults={"progress": False, **family.defaults, **overrides, "family": family_name})
    parser.epilog = (f"Without a GPU the defaults are a CPU-sized study: {switch}"
                     f"{_shown(cpu_study_defaults(*resolve(cpu_family_name), space))}.")
    if wants_help:
        parser.parse_args(argv)  # prints the help and exits
    parser.set_defaults(**{name: _UNSET for name, *_ in fields})
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not _UNSET and k != "param"}

    # 3. Now torch may load: on which device the trials train.
    from .. import device as devices

    no_gpu = devices.detect_device(given.get("device", family.defaults.get("device", "auto"))).type == "cpu"
    full_size = family
    applied = {}
    if no_gpu:
        cpu_family_name = cpu_family_of(preset, family_name, given_family, "model" in given or "model" in space)
        switch = f"--family {cpu_family_name} " if cpu_family_name != family_name else ""
        family, overrides = resolve(cpu_family_name)
        method = given.get("method", overrides.get("method"))
        applied = {k: v for k, v in cpu_study_defaults(family, overrides, space, method).items() if k not in given}
    values = {**{k: v.path() if isinstance(v, PackagedCheckpoint) else v for k, v in applied.items()}, **given}
    search_names = {f.name for f in dataclasses.fields(SearchConfig)}
    search = SearchConfig(**{k: v for k, v in values.items() if k in search_names - {"family"}},
                          family=cpu_family_name if no_gpu else family_name, param=tuple(pre.param or ()))
    config = config_cls(**{"progress": False, **family.defaults, **overrides,
                           **{k: v for k, v in values.items() if k not in search_names}})
    check_space_values(space, config)
    # A training flag given, or a field searched, that the trials would not use: one line now. A field
    # whose condition is searched too (lora_r with method=choice:none,lora) is left to each trial.
    config_fields = config.__dataclass_fields__
    check_applies(config, {**{name: flag(name) for name in given if name in config_fields},
                           **{name: f"searched {name}" for name in space
                              if not set(config_fields[name].metadata.get("applies", {})) & set(space)}},
                  who="the study's trials have")
    if applied:
        checkpoint = f"{full_size.checkpoint} " if full_size.checkpoint else ""
        print(f"note: no GPU here, so a CPU-sized study: {switch}{_shown(applied)}; with a GPU the same "
              f"command trains {checkpoint}at full size", flush=True)

    tag = family_tag(family, config)
    objectives = search.objective_names
    if search.study_name:
        study_name = search.study_name
    elif preset and space == preset.space:
        study_name = f"{preset_name.replace('_', '-')}-{tag}"
    else:
        study_name = f"{tag}-" + "-".join(sorted(space))
    if not search.study_name and objectives != ("val_acc",):
        study_name += "-" + "-".join(objectives)
    reference = None
    if preset and search.reference_trial:
        reference = {name: preset.reference.get(name, getattr(config, name)) for name in preset.space}
    return Setup(search, config, family, tag, space, study_name, preset_name, reference)


def check_space_values(space: dict, config) -> None:
    """Every edge of the space (each bound, each choice) makes a valid config: else one line naming it."""
    for name, param in space.items():
        for value in param.extremes():
            try:
                dataclasses.replace(config, **{name: value})
            except UserError as error:
                raise UserError(f"the space {describe({name: param})} reaches {value!r}: {error}") from None
