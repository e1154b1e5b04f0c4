"""Loading a checkpoint for training: transformers (optionally 8/4-bit through
bitsandbytes) or unsloth (CUDA only), wrapped with the configured PEFT method."""

import torch

from .. import device as devices

from ..config import EncoderConfig
from ..errors import UserError
from .architectures import head_modules, lora_targets
from .peft_methods import METHODS

# The dtype the 4-bit base computes in, per resolved --precision: the training precision,
# never a guess from the GPU (T4 and V100 report emulated bf16 support, where NF4 in bf16
# would run beside fp16 autocast).
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def quantization_config(quantize: str, model_type: str, compute_dtype: str = "float32"):
    """bitsandbytes' config for an 8-bit or 4-bit (NF4, double-quantised) base; None for "none".
    The classification head stays in full precision (it trains)."""
    if quantize == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise UserError(f"--quantize {quantize}: bitsandbytes is not installed "
                        "(pip install bitsandbytes), or use --quantize none") from None
    skip = head_modules(model_type)
    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=getattr(torch, compute_dtype), llm_int8_skip_modules=skip)


def _supports_sdpa(name: str) -> bool:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    model_class = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(AutoConfig.from_pretrained(name)), None)
    return bool(getattr(model_class, "_supports_sdpa", False))


def _enable_checkpointing(model):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_classifier(name: str, model_type: str, device: torch.device, quantize: str = "none",
                    compute_dtype: str = "float32", pad_token_id: int | None = None,
                    gradient_checkpointing: bool = False):
    """A sequence classifier (2 labels) from checkpoint `name`, loaded one way for training and
    for serving an adapter, so that the logged model computes what the run computed: PyTorch's
    fused attention where the architecture has it (DeBERTa has none: eager); an 8/4-bit base
    quantised by bitsandbytes and then prepared as PEFT prepares one for training (weights
    frozen, fp16/bf16 weights cast to fp32); the tokenizer's pad token when the config has none."""
    from transformers import AutoModelForSequenceClassification

    kwargs = {"num_labels": 2}
    if _supports_sdpa(name):
        kwargs["attn_implementation"] = "sdpa"
    quantization = quantization_config(quantize, model_type, compute_dtype)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": device.type}
    model = AutoModelForSequenceClassification.from_pretrained(name, **kwargs)
    if model.config.pad_token_id is None and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    if quantization is not None:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def load_transformers_model(config: EncoderConfig, model_type: str, device: torch.device,
                            precision: str = "fp32"):
    """(model, tokenizer) from transformers, quantised and PEFT-wrapped as configured; a 4-bit
    base computes in the training precision (COMPUTE_DTYPES)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    model = load_classifier(config.model, model_type, device, config.quantize, COMPUTE_DTYPES[precision],
                            tokenizer.pad_token_id, config.gradient_checkpointing)
    if config.quantize == "none" and config.gradient_checkpointing:
        _enable_checkpointing(model)
        if config.method != "none":
            model.enable_input_require_grads()  # frozen embeddings: checkpoints still need a grad path
    builder = METHODS[config.method]
    if builder is not None:
        from peft import get_peft_model
        model = get_peft_model(model, builder(config, model_type, head_modules(model_type)))
    return model, tokenizer


def unfreeze_heads(model, model_type: str) -> None:
    """Make the classification head train, whatever a library did with modules_to_save: the
    head's trainable copy, never PEFT's frozen original (`<head>.original_module.*`), which
    gets no gradient (counted as trainable it inflates trainable_params, and under DDP a
    parameter that requires grad but never gets one fails the step)."""
    for name, parameter in model.named_parameters():
        if ".original_module." in f".{name}." or not parameter.is_floating_point():
            continue
        if any(f".{head}." in f".{name}" for head in head_modules(model_type)):
            parameter.requires_grad_(True)


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
    unfreeze_heads(model, model_type)  # the new head trains whatever the version did with modules_to_save
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
