"""The pretrained-encoder recipe: full fine-tuning, PEFT, R-Drop, SCL, unsloth.

What is special about it: the checkpoint's config.json is read and the method
checked before any weights load; reviews are tokenised with head+tail
truncation and batched by length with dynamic padding; the checkpoint loads
(optionally 8/4-bit) and is wrapped with the PEFT method; the regulariser
changes the training loss only; the model (or adapter) is logged with its
tokenizer for reloading. The run itself is imdb_sentiment/runs.py's.
"""

import dataclasses
import os
from pathlib import Path

from .. import data, device as devices, serving, tracking
from ..batching import TokenIds, make_loader
from ..config import EncoderConfig
from ..encoders import checkpoints
from ..encoders.architectures import check_method, lora_targets, model_config, require_cuda_for_unsloth, \
    token_budget
from ..encoders.loading import COMPUTE_DTYPES, TrainedWeights, load_transformers_model, load_unsloth_model, \
    use_threads
from ..encoders.tokens import forward, make_collate, tokenize
from ..families import model_label
from ..losses import COMPUTE_LOSSES
from ..runs import Prepared, Trained
from ..training import count_parameters, fit_logged, predict


# --precision auto on a CPU with native bf16 (AVX512-BF16, AMX, Arm BF16): bf16, measured faster at the
# same accuracy by bench/precision.py (AMD EPYC with avx512_bf16, 2 cores, 1600 training reviews,
# 1 epoch): all-MiniLM-L6-v2 full fine-tuning 992.9 ms/batch fp32 vs 517.1 bf16 (1.92x),
# test accuracy 0.8405 vs 0.8400. Not measured, and not taken, for a base quantised by bitsandbytes: its
# CPU kernels compute in fp32, and DeBERTa's attention mask then overflows bf16 under autocast.
CPU_BF16_FASTER = True


def prepare(config: EncoderConfig) -> Prepared:
    require_cuda_for_unsloth(config)
    if config.backend == "unsloth":
        import unsloth  # noqa: F401  (unsloth patches transformers: it must come first)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    source = checkpoints.pinned(config.model)  # an mlm run's encoder by its model id
    checkpoint = checkpoints.local_checkpoint(source)
    base_config = model_config(checkpoint)
    model_type = base_config.model_type
    label, tags = model_label(config.model), {}
    pretraining = checkpoints.pretraining_of(checkpoint)
    if pretraining is not None:  # an mlm run's encoder (by URI or its folder): validation must be unseen text
        splits = data.load_splits(config.data_dir, config.val_fraction, config.seed, config.limit)
        checkpoints.check_unseen(config.model, pretraining, splits.val["id"])
        label, tags = f"{pretraining['base_model']}+mlm", {"pretrained_from": config.model,
                                                            "pretrained_model": source,
                                                            "pretrained_run": pretraining.get("run_id")
                                                            or checkpoints.source_run(source)}
    check_method(config, model_type)
    use_threads(config.cpu_threads)
    budget = token_budget(config, base_config)
    params = {"model_type": model_type, "tokens_per_review": budget}
    if config.method == "lora":
        params["lora_targets_resolved"] = ",".join(lora_targets(config, model_type))
    device = devices.detect_device(config.device)
    return Prepared(device, model=label,
                    precision=devices.resolve_precision(config.precision, device,
                                                        CPU_BF16_FASTER and config.quantize == "none"),
                    tags={"model_type": model_type, "method": config.method, "regulariser": config.regulariser,
                          "quantize": config.quantize, "backend": config.backend, **tags},
                    params=params,
                    summary=f"; {config.model} ({model_type}), method {config.method}, "
                            f"regulariser {config.regulariser}",
                    context={"model_type": model_type, "tokens": budget, "checkpoint": checkpoint, "source": source})


def train(config: EncoderConfig, prepared: Prepared, splits: data.Splits, on_epoch) -> Trained:
    model_type, device = prepared.context["model_type"], prepared.device
    source = prepared.context["source"]  # an mlm run's encoder as models:/<model id>, else config.model
    config = dataclasses.replace(config, model=prepared.context["checkpoint"])  # the folder it loads from
    devices.set_seed(config.seed)  # the same head initialisation whatever ran before
    if config.backend == "unsloth":
        model, tokenizer = load_unsloth_model(config, model_type)
    else:
        model, tokenizer = load_transformers_model(config, model_type, device, prepared.precision)
    trainable, total = count_parameters(model)
    if devices.is_main_process():
        tracking.log_params({"trainable_params": trainable, "total_params": total})
        print(f"parameters: {trainable:,} trainable of {total:,}", flush=True)
    datasets = {name: TokenIds(tokenize(tokenizer, getattr(splits, name)["review"], prepared.context["tokens"],
                                        config.truncation), getattr(splits, name)["label"].to_numpy())
                for name in ("train", "val", "test")}

    def loader(name, shuffle, batch_size):
        return make_loader(datasets[name], batch_size, shuffle, config.seed, make_collate(tokenizer), device=device)

    # TrainedWeights: the best-epoch snapshot holds only what trains (a PEFT adapter, not the base).
    result = fit_logged(TrainedWeights(model), loader("train", True, config.batch_size),
                        loader("val", False, config.eval_batch_size), prepared.fit_settings(config), device,
                        forward, compute_loss=COMPUTE_LOSSES[config.regulariser](forward, config),
                        on_epoch=on_epoch)

    def predict_split(name):
        # fp32, as the logged model serves: the probabilities logged are the ones it reproduces.
        return predict(model, loader(name, False, config.eval_batch_size), forward, device,
                       all_processes=True)[0]

    def log_model(threshold):
        if not config.save_model:
            return
        # What the pyfunc rebuilds the predictions with: the token budget the run tokenised with, and
        # for an adapter the checkpoint it goes on (a local folder by its absolute path), quantised
        # as it trained (quantize, and compute_dtype for a 4-bit base).
        settings = {"max_length": prepared.context["tokens"], "truncation": config.truncation,
                    "batch_size": config.eval_batch_size, "model_type": model_type, "method": config.method,
                    "quantize": config.quantize, "compute_dtype": _compute_dtype(model, prepared.precision)}
        if config.method != "none":  # a URI, which the server resolves as training did, or a folder
            local = Path(config.model).expanduser()
            settings["base_model"] = source if checkpoints.is_mlflow_uri(source) else \
                str(local.resolve()) if local.exists() else config.model
        serving.log_encoder_model(model, tokenizer, settings, threshold)

    return Trained(result, trainable, predict_split, log_model)


def _compute_dtype(model, precision: str) -> str:
    """What the 4-bit base computed in, as its config records it (unsloth picks its own), else
    the one load_transformers_model chose from the precision."""
    quantization = getattr(getattr(model, "config", None), "quantization_config", None)
    if quantization is not None and not isinstance(quantization, dict):
        quantization = quantization.to_dict()
    if quantization and quantization.get("load_in_4bit") and quantization.get("bnb_4bit_compute_dtype"):
        return str(quantization["bnb_4bit_compute_dtype"]).removeprefix("torch.")
    return COMPUTE_DTYPES[precision]
