"""What differs between encoder architectures (by config.model_type): LoRA targets,
the classification head, which accept prefix tuning; the checks made on a
checkpoint's config.json before any weights load."""

from ..config import EncoderConfig
from ..errors import UserError

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
    import torch

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


def token_budget(config: EncoderConfig, base_config) -> int:
    """max_length, less the virtual tokens the prompt methods put before the review: P-tuning and
    prompt tuning prepend them to the input, and prefix tuning's keys and values count as past
    tokens, so a review's position ids start after them. Each takes a position."""
    budget = config.max_length
    positions = getattr(base_config, "max_position_embeddings", None)
    if positions and base_config.model_type in ("roberta", "xlm-roberta"):
        positions -= 2  # RoBERTa's positions start after the padding index
    if config.method in ("ptuning", "prompt", "prefix") and positions:
        budget = min(budget, positions - config.num_virtual_tokens)
    elif positions:
        budget = min(budget, positions)
    return budget
