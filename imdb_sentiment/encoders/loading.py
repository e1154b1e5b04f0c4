"""Loading a checkpoint for training: transformers (optionally 8/4-bit through
bitsandbytes) or unsloth (CUDA only), wrapped with the configured PEFT method."""

import torch

from .. import device as devices

from ..config import EncoderConfig
from ..errors import UserError
from .architectures import head_modules, lora_targets
from .peft_methods import METHODS

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


def _supports_sdpa(name: str) -> bool:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    model_class = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(AutoConfig.from_pretrained(name)), None)
    return bool(getattr(model_class, "_supports_sdpa", False))


def _enable_checkpointing(model):
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def load_transformers_model(config: EncoderConfig, model_type: str, device: torch.device):
    """(model, tokenizer) from transformers, quantised and PEFT-wrapped as configured."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    kwargs = {"num_labels": 2}
    if _supports_sdpa(config.model):  # PyTorch's fused attention kernels; DeBERTa has none (eager)
        kwargs["attn_implementation"] = "sdpa"
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
