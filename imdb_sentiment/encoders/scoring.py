"""Scoring reviews with a fine-tuned encoder on a CPU, the ways `make bench-predict` compares:

    fp32         the logged model as trained: batches of reviews of like length (the reference)
    fp32-unsorted  the same in the reviews' own order, each batch padded to its longest
    bf16         autocast to bf16 (only where the CPU has it natively; emulated it is slower)
    int8         torch's dynamic quantisation: Linear weights in int8, activations quantised per batch
    onnx         ONNX Runtime on the exported graph (fp32), all graph optimisations
    onnx-int8    ONNX Runtime on the graph with dynamic int8 weights (onnxruntime.quantization)

`Scorer(model, way)` holds what a way needs; `scorer.probabilities(ids, batch_size)` gives P(positive)
for token ids in their order. serving.py offers fp32, bf16 and int8 to the logged model
(IMDB_PREDICT_PRECISION); each prediction's distance from fp32 is what the benchmark measured.
"""

import tempfile
from pathlib import Path

import numpy as np
import torch

WAYS = ("fp32", "fp32-unsorted", "bf16", "int8", "onnx", "onnx-int8")
# What the logged model can be asked to score with (serving.PRECISION_VARIABLE).
SERVED = ("fp32", "bf16", "int8")


def batches(ids: list[list[int]], batch_size: int, by_length: bool) -> list[np.ndarray]:
    """Index arrays of the reviews each batch holds: runs of like length, or the given order."""
    order = np.argsort([len(one) for one in ids], kind="stable") if by_length else np.arange(len(ids))
    return [order[start:start + batch_size] for start in range(0, len(ids), batch_size)]


def pad(ids: list[list[int]], chosen: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    longest = max(len(ids[i]) for i in chosen)
    input_ids = np.full((len(chosen), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(chosen), longest), dtype=np.int64)
    for row, i in enumerate(chosen):
        input_ids[row, :len(ids[i])], mask[row, :len(ids[i])] = ids[i], 1
    return input_ids, mask


def unavailable(way: str) -> str | None:
    """Why `way` cannot run here, or None."""
    from ..device import cpu_has_native_bf16, describe_cpu_bf16

    if way == "bf16" and not cpu_has_native_bf16():
        return f"this CPU ({describe_cpu_bf16()}) emulates bf16, slower than fp32"
    if way.startswith("onnx"):
        import importlib.util
        missing = [name for name in ("onnxruntime", "onnx") if importlib.util.find_spec(name) is None]
        if missing:
            return f"{', '.join(missing)} not installed (pip install -r requirements.txt)"
    return None


def dynamic_int8(model):
    """torch's dynamic int8 quantisation of every Linear layer (CPU only), on a copy."""
    import copy

    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).float(), {torch.nn.Linear}, dtype=torch.qint8)


class Scorer:
    def __init__(self, model, way: str, pad_id: int):
        if way not in WAYS:
            raise ValueError(f"way {way!r}: expected one of {', '.join(WAYS)}")
        self.way, self.pad_id, self.session, self._scratch = way, pad_id, None, None
        model = model.eval()
        if way.startswith("onnx"):
            self.session = self._onnx_session(model, quantised=way == "onnx-int8")
        self.model = dynamic_int8(model) if way == "int8" else model

    def _onnx_session(self, model, quantised: bool):
        import onnxruntime

        self._scratch = tempfile.TemporaryDirectory(prefix="imdb-onnx-")
        path = Path(self._scratch.name) / "model.onnx"
        # Traced on a padded batch: the graph keeps the attention mask (transformers skips it, in a
        # branch the trace would freeze, when no position is padding).
        mask = torch.ones(2, 16, dtype=torch.long)
        mask[1, 10:] = 0
        example = (torch.ones(2, 16, dtype=torch.long), mask)

        class Logits(torch.nn.Module):  # the graph takes and gives plain tensors
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

        torch.onnx.export(Logits(model), example, str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamo=False, opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}})
        if quantised:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantised_path = path.with_name("model-int8.onnx")
            quantize_dynamic(str(path), str(quantised_path), weight_type=QuantType.QInt8)
            path = quantised_path
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _logits(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.way == "bf16"):
            logits = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)).logits
        return logits.float().numpy()

    def probabilities(self, ids: list[list[int]], batch_size: int = 64) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.float64)
        for chosen in batches(ids, batch_size, by_length=self.way != "fp32-unsorted"):
            logits = self._logits(*pad(ids, chosen, self.pad_id)).astype(np.float64)
            out[chosen] = 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))  # softmax over the 2 classes
        return out

