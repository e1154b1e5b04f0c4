"""The PEFT methods: each builds its peft config from an EncoderConfig. Every method
keeps the randomly initialised classification head trainable (modules_to_save)."""

from .architectures import lora_targets


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
