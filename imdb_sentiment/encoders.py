"""Pretrained encoders on the shared loop: full fine-tuning, PEFT, R-Drop, SCL, unsloth.

A train/ script is one call:

    config = parse_config(EncoderConfig, argv, defaults={"model": "bert-base-uncased"})
    run_encoder(config, family="bert")

Steps: check the model and method (before any weights load); read and split
the data; tokenise (dynamic padding later, length-grouped batches); load the
checkpoint (optionally 8/4-bit via bitsandbytes) and wrap it with a PEFT
method; train with `training.fit` and the chosen loss; predict the test
reviews; log everything, and the model or adapter for reloading, to one
MLflow run.

transformers, peft, bitsandbytes and unsloth are imported inside the
functions that need them, so the configs and registries load without them.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from . import data, device as devices, losses, text, tracking
from .batching import BucketBatchSampler
from .config import NetworkConfig, new_default, option, require
from .errors import UserError
from .pipeline import Outcome, fit_logged
from .reporting import report_test
from .training import FitSettings, predict

# --- registries ---------------------------------------------------------------

# LoRA targets per model_type: the attention projections the LoRA paper adapts.
LORA_TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "deberta": ["in_proj"],
    "distilbert": ["q_lin", "v_lin"],
    "modernbert": ["Wqkv"],  # fused query/key/value projection
}

# The randomly initialised classification head per model_type: trained (and
# saved) by every PEFT method, kept out of 8/4-bit quantisation.
HEAD_MODULES = {
    "bert": ["classifier"],
    "roberta": ["classifier"],
    "xlm-roberta": ["classifier"],
    "electra": ["classifier"],
    "deberta-v2": ["pooler", "classifier"],
    "deberta": ["pooler", "classifier"],
    "distilbert": ["pre_classifier", "classifier"],
    "modernbert": ["head", "classifier"],
}

# Prefix tuning feeds learned keys/values as past_key_values; only these encoders accept them.
PREFIX_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")

# Peak learning rates that suit each method when --lr is not given.
DEFAULT_LR = {"none": 2e-5, "lora": 5e-4, "ptuning": 1e-3, "prompt": 5e-3, "prefix": 5e-3}


def _lora(config, model_type, head):
    from peft import LoraConfig, TaskType
    return LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=lora_targets(config, model_type),
                      modules_to_save=list(head))


def _ptuning(config, model_type, head):
    from peft import PromptEncoderConfig, TaskType
    return PromptEncoderConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.num_virtual_tokens,
                               encoder_hidden_size=config.encoder_hidden_size, modules_to_save=list(head))


def _prompt(config, model_type, head):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType
    init = {}
    if config.prompt_init_text:
        init = {"prompt_tuning_init": PromptTuningInit.TEXT, "prompt_tuning_init_text": config.prompt_init_text,
                "tokenizer_name_or_path": config.model}
    # modules_to_save keeps the classifier trainable: frozen, it scored 0.52 in the reference.
    return PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.num_virtual_tokens,
                              modules_to_save=list(head), **init)


def _prefix(config, model_type, head):
    from peft import PrefixTuningConfig, TaskType
    return PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.num_virtual_tokens,
                              encoder_hidden_size=config.encoder_hidden_size, modules_to_save=list(head))


# method name -> builder of its PEFT config (None: full fine-tuning)
METHODS = {"none": None, "lora": _lora, "ptuning": _ptuning, "prompt": _prompt, "prefix": _prefix}
PROMPT_METHODS = ("ptuning", "prompt", "prefix")  # they prepend virtual tokens


# --- config ---------------------------------------------------------------------

@dataclass
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
    mixed_precision: bool = option(True, "bf16 autocast on GPUs that support it (no effect on CPU)")
    save_model: bool = option(True, "log the trained model (or PEFT adapter) with its tokenizer")
    cpu_threads: int = option(0, "torch CPU threads (0: all cores); on cores other jobs share, 1 can be "
                                 "several times faster than all")

    def __post_init__(self):
        super().__post_init__()
        require(self.method in METHODS, "method", f"one of {sorted(METHODS)}", self.method)
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


def family_name(base: str, config: EncoderConfig) -> str:
    """The tables' row key: `bert` for full fine-tuning, `bert-lora` for LoRA on it, and so on,
    so that a PEFT run never competes with full fine-tuning for one row."""
    return base if config.method == "none" else f"{base}-{config.method}"


def lora_targets(config: EncoderConfig, model_type: str) -> list[str]:
    if config.target_modules != "auto":
        return [name.strip() for name in config.target_modules.split(",") if name.strip()]
    if model_type not in LORA_TARGETS:
        raise UserError(f"--target-modules: no default for model type {model_type!r} "
                        f"(known: {', '.join(sorted(LORA_TARGETS))}); name the modules, e.g. query,value")
    return LORA_TARGETS[model_type]


def head_modules(model_type: str) -> list[str]:
    return HEAD_MODULES.get(model_type, ["classifier", "score"])


# --- checks that run before any weights load -------------------------------------

def require_cuda_for_unsloth(config: EncoderConfig) -> None:
    """unsloth needs a CUDA GPU: say so, and what runs here instead, before importing it."""
    if config.backend == "unsloth" and not torch.cuda.is_available():
        raise UserError("unsloth needs a CUDA GPU and none is available here; on CPU run the PEFT "
                        "script with --method lora instead (make train-deberta-lora)")


def model_config(name: str):
    """The checkpoint's config.json only (no weights): what architecture it is."""
    from transformers import AutoConfig
    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"--model {name}: cannot read its config ({first}); pass a local folder "
                        "or a Hugging Face name that is reachable or cached") from None


def check_method(config: EncoderConfig, model_type: str) -> None:
    if config.method == "prefix" and model_type not in PREFIX_MODEL_TYPES:
        raise UserError(f"--method prefix: {model_type} models do not accept past_key_values, which "
                        f"prefix tuning feeds them (it works on {', '.join(PREFIX_MODEL_TYPES)}); "
                        "use --method lora, ptuning or prompt")
    if config.method == "lora":
        lora_targets(config, model_type)


def model_label(name: str) -> str:
    """What to call a checkpoint in tables: its name, or a local folder's meaningful name."""
    path = Path(name)
    if not path.exists():
        return name
    folder = path.resolve()
    return folder.parent.name if folder.name in ("model", "checkpoint", "") else folder.name


# --- data -------------------------------------------------------------------------

class TokenizedDataset(Dataset):
    """Token ids of each review (unpadded) with its label; `index` lets predict() reorder."""

    def __init__(self, ids: list[list[int]], labels):
        self.ids = ids
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "label": int(self.labels[index]), "index": index}

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.ids), dtype=np.int64, count=len(self.ids))


def clean_reviews(reviews) -> list[str]:
    """HTML line breaks and tags out, whitespace collapsed: what the tokenizer sees."""
    return [" ".join(text.strip_html(review).split()) for review in reviews]


def tokenize(tokenizer, reviews, max_length: int, truncation: str) -> list[list[int]]:
    """Token ids (special tokens included) of at most max_length per review.

    head_tail keeps the first quarter and the last three quarters; the first
    and last tokens are the tokenizer's own specials ([CLS] ... [SEP]).
    """
    cleaned = clean_reviews(reviews)
    if truncation == "head":
        return tokenizer(cleaned, truncation=True, max_length=max_length)["input_ids"]
    out = []
    for ids in tokenizer(cleaned, truncation=False, verbose=False)["input_ids"]:
        out.append(ids if len(ids) <= max_length else
                   text.truncate(np.asarray(ids), max_length, truncation).tolist())
    return out


def make_collate(tokenizer):
    """Dynamic padding: each batch padded to its own longest review (tokenizer.pad)."""
    def collate(items):
        padded = tokenizer.pad({"input_ids": [item["input_ids"] for item in items]}, padding=True,
                               return_tensors="pt", return_attention_mask=True)
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
                "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),
                "index": torch.tensor([item["index"] for item in items], dtype=torch.long)}
    return collate


def make_loader(dataset: TokenizedDataset, tokenizer, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """Length-grouped batches (BucketBatchSampler) with dynamic padding."""
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=make_collate(tokenizer))


def token_budget(config: EncoderConfig, base_config) -> int:
    """max_length, less the virtual tokens prompt methods prepend (they take positions too)."""
    budget = config.max_length
    positions = getattr(base_config, "max_position_embeddings", None)
    if positions and base_config.model_type in ("roberta", "xlm-roberta"):
        positions -= 2  # RoBERTa's positions start after the padding index
    if config.method in ("ptuning", "prompt") and positions:
        budget = min(budget, positions - config.num_virtual_tokens)
    elif positions:
        budget = min(budget, positions)
    return budget


# --- model ------------------------------------------------------------------------

def quantization_config(config: EncoderConfig, model_type: str):
    if config.quantize == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise UserError(f"--quantize {config.quantize}: bitsandbytes is not installed "
                        "(pip install bitsandbytes), or use --quantize none") from None
    skip = head_modules(model_type)
    if config.quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, llm_int8_skip_modules=skip)


def _enable_checkpointing(model):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_transformers_model(config: EncoderConfig, model_type: str, device: torch.device):
    """(model, tokenizer) from transformers, quantised and PEFT-wrapped as configured."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    kwargs = {"num_labels": 2}
    quantization = quantization_config(config, model_type)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": device.type}
    model = AutoModelForSequenceClassification.from_pretrained(config.model, **kwargs)
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if quantization is not None:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif config.gradient_checkpointing:
        _enable_checkpointing(model)
        if config.method != "none":
            model.enable_input_require_grads()  # frozen embeddings: checkpoints still need a grad path
    builder = METHODS[config.method]
    if builder is not None:
        from peft import get_peft_model
        model = get_peft_model(model, builder(config, model_type, head_modules(model_type)))
    return model, tokenizer


def load_unsloth_model(config: EncoderConfig, model_type: str):
    """(model, tokenizer) through unsloth's FastModel (GPU only; checked before this runs).

    Written from unsloth's documented API (FastModel.from_pretrained with
    auto_model for encoders, then FastModel.get_peft_model); arguments an
    installed version does not accept are left out rather than guessed.
    """
    import inspect

    from unsloth import FastModel  # noqa: I001 (after the CUDA check, before anything patches)
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = FastModel.from_pretrained(
        model_name=config.model, auto_model=AutoModelForSequenceClassification, num_labels=2,
        max_seq_length=config.max_length, dtype=None, load_in_4bit=config.quantize == "4bit",
        load_in_8bit=config.quantize == "8bit", full_finetuning=False)
    peft_kwargs = dict(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                       target_modules=lora_targets(config, model_type), bias="none",
                       use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
                       random_state=config.seed, task_type="SEQ_CLS",
                       modules_to_save=head_modules(model_type))
    accepted = inspect.signature(FastModel.get_peft_model).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        peft_kwargs = {k: v for k, v in peft_kwargs.items() if k in accepted}
    model = FastModel.get_peft_model(model, **peft_kwargs)
    # The new classification head must train whatever the version did with modules_to_save.
    for name, parameter in model.named_parameters():
        if any(f".{head}." in f".{name}" for head in head_modules(model_type)) and parameter.is_floating_point():
            parameter.requires_grad_(True)
    return model, tokenizer


class TrainedWeights(torch.nn.Module):
    """A model whose state_dict is only its trainable weights.

    The shared loop snapshots the best epoch's state_dict and restores it at
    the end: for PEFT that is the adapter and head alone (a few MB, not the
    frozen base), and 8-bit base weights never go through load_state_dict,
    which bitsandbytes refuses on CPU.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.trained = [name for name, p in model.named_parameters() if p.requires_grad]

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def state_dict(self, *args, **kwargs):
        params = dict(self.model.named_parameters())
        return {name: params[name] for name in self.trained}

    @torch.no_grad()
    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        params = dict(self.model.named_parameters())
        for name, value in state.items():
            params[name].copy_(value)


def use_threads(count: int) -> None:
    if count:
        torch.set_num_threads(count)
    else:
        devices.use_all_cores()


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# --- forward and losses ----------------------------------------------------------------

def forward(model, batch):
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def pooled_features(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the last hidden states over real tokens; virtual tokens prepended by
    prompt methods make hidden longer than the mask, and count as real."""
    extra = hidden.shape[1] - attention_mask.shape[1]
    if extra > 0:
        attention_mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], extra), attention_mask], 1)
    mask = attention_mask[:, : hidden.shape[1]].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def ce_loss(config):
    def compute_loss(model, batch):
        logits = forward(model, batch)
        return F.cross_entropy(logits.float(), batch["labels"]), logits
    return compute_loss


def rdrop_compute_loss(config):
    """Two dropout passes as one doubled batch (each row draws its own dropout mask)."""
    def compute_loss(model, batch):
        doubled = {key: torch.cat([batch[key], batch[key]]) for key in ("input_ids", "attention_mask")}
        logits_a, logits_b = forward(model, doubled).chunk(2)
        return losses.rdrop_loss(logits_a, logits_b, batch["labels"], config.rdrop_alpha), logits_a
    return compute_loss


def scl_compute_loss(config):
    """CE plus lambda times SupCon on the L2-normalised mean-pooled features, as [batch, 1 view, dim]."""
    def compute_loss(model, batch):
        output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       output_hidden_states=True)
        features = F.normalize(pooled_features(output.hidden_states[-1].float(), batch["attention_mask"]), dim=-1)
        contrastive = losses.supcon_loss(features.unsqueeze(1), batch["labels"], config.scl_temperature)
        loss = F.cross_entropy(output.logits.float(), batch["labels"]) + config.scl_lambda * contrastive
        return loss, output.logits
    return compute_loss


# regulariser name -> builder of the training loss (evaluation always uses `forward`)
LOSSES = {"none": ce_loss, "rdrop": rdrop_compute_loss, "scl": scl_compute_loss}


# --- saving and reloading ------------------------------------------------------------------

def save_model(model, tokenizer, config: EncoderConfig, model_type: str, folder: Path) -> None:
    """save_pretrained of the model (or PEFT adapter) and tokenizer, plus what reloading needs."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "imdb_encoder.json").write_text(json.dumps(
        {"base_model": config.model, "model_type": model_type, "method": config.method,
         "quantize": config.quantize, "max_length": config.max_length, "truncation": config.truncation},
        indent=2))


def load_for_prediction(folder, device: str = "cpu"):
    """(model in eval mode, tokenizer, settings) from a folder save_model wrote (e.g. a downloaded artifact)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(folder)
    settings = json.loads((folder / "imdb_encoder.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "adapter_config.json").exists():
        from peft import AutoPeftModelForSequenceClassification
        model = AutoPeftModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    return model.to(device).eval(), tokenizer, settings


def predict_reviews(model, tokenizer, reviews, max_length: int, truncation: str = "head_tail",
                    batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Positive-class probabilities of raw reviews, in order."""
    ids = tokenize(tokenizer, list(reviews), max_length, truncation)
    loader = make_loader(TokenizedDataset(ids, np.zeros(len(ids))), tokenizer, batch_size, False, 0)
    probs, _ = predict(model, loader, forward, torch.device(device))
    return probs


# --- the recipe --------------------------------------------------------------------------------

def run_encoder(config: EncoderConfig, family: str, on_epoch: Callable | None = None,
                parent_run_id: str | None = None, extra_tags: dict | None = None) -> Outcome:
    """Train and test one encoder, logged as one MLflow run.

    Same contract as pipeline.run_embedding_family: on_epoch(epoch, metrics)
    runs after each epoch is logged (a search trial reports and prunes there
    by raising), parent_run_id nests the run, extra_tags are added to it.
    """
    started = time.perf_counter()
    require_cuda_for_unsloth(config)
    if config.backend == "unsloth":
        import unsloth  # noqa: F401  (unsloth patches transformers: it must come first)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    base_config = model_config(config.model)
    model_type = base_config.model_type
    check_method(config, model_type)
    devices.set_seed(config.seed)
    use_threads(config.cpu_threads)
    device = devices.detect_device(config.device)
    splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
    print(f"{family}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test reviews "
          f"on {device}; {config.model} ({model_type}), method {config.method}, "
          f"regulariser {config.regulariser}", flush=True)
    tags = {"family": family, "model": model_label(config.model), "model_type": model_type,
            "method": config.method, "regulariser": config.regulariser, "quantize": config.quantize,
            "backend": config.backend, "device": device.type, **(extra_tags or {})}
    budget = token_budget(config, base_config)
    params = tracking.run_params(config, {"data_sha256": splits.sha256, "device_resolved": str(device),
                                          "model_type": model_type, "tokens_per_review": budget})
    if config.method == "lora":
        params["lora_targets_resolved"] = ",".join(lora_targets(config, model_type))
    run_name = config.run_name or f"{family}-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracking.start_run(run_name, tags, params, experiment=config.experiment,
                            parent_run_id=parent_run_id) as run:
        devices.set_seed(config.seed)  # the same head initialisation whatever ran before
        if config.backend == "unsloth":
            model, tokenizer = load_unsloth_model(config, model_type)
        else:
            model, tokenizer = load_transformers_model(config, model_type, device)
        trainable, total = count_parameters(model)
        tracking.log_params({"trainable_params": trainable, "total_params": total})
        print(f"parameters: {trainable:,} trainable of {total:,}", flush=True)
        datasets = {name: TokenizedDataset(tokenize(tokenizer, getattr(splits, name)["review"], budget,
                                                    config.truncation),
                                           getattr(splits, name)["label"].to_numpy())
                    for name in ("train", "val", "test")}

        def loader(name, shuffle, batch_size):
            return make_loader(datasets[name], tokenizer, batch_size, shuffle, config.seed)

        result = fit_logged(TrainedWeights(model), loader("train", True, config.batch_size),
                            loader("val", False, config.eval_batch_size), FitSettings.from_config(config),
                            device, forward, compute_loss=LOSSES[config.regulariser](config),
                            on_epoch=on_epoch)
        test_probs, _ = predict(model, loader("test", False, config.eval_batch_size), forward, device,
                                config.mixed_precision)
        final = report_test(splits.test, test_probs, result.history, result.best_epoch, result.best_val_acc,
                            result.train_seconds, started, trainable)
        if config.save_model:
            with tracking.scratch_dir() as scratch:
                folder = Path(scratch) / "model"
                save_model(model, tokenizer, config, model_type, folder)
                tracking.log_directory(folder, "model")
        return Outcome(run.info.run_id, result.best_val_acc, final["test_acc"], result.history)
