"""The pyfunc an mlm run logs as its model `encoder`, as code: MLflow runs this file when it loads it.

Its artifact `encoder` is the pretrained encoder's save_pretrained folder (what a fine-tuning run
loads with --model runs:/<id>/encoder); as a pyfunc it fills [MASK] tokens, a quick look at what
the pretraining taught it.

    input:  a DataFrame with a `text` column, each text holding the tokenizer's mask token
    output: a DataFrame of `text` and `fills` (the five likeliest tokens at its first mask, "a|b|...")
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FillMaskModel(PythonModel):
    def load_context(self, context):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        folder = context.artifacts["encoder"]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForMaskedLM.from_pretrained(folder).eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        import torch

        texts = list(model_input["text"] if isinstance(model_input, pd.DataFrame) else model_input)
        fills = []
        for text in texts:
            encoded = self.tokenizer(text, return_tensors="pt", truncation=True)
            where = (encoded["input_ids"][0] == self.tokenizer.mask_token_id).nonzero()
            if not len(where):
                fills.append("")
                continue
            with torch.no_grad():
                logits = self.model(**encoded).logits[0, where[0, 0]]
            fills.append("|".join(self.tokenizer.convert_ids_to_tokens(logits.topk(5).indices.tolist())))
        return pd.DataFrame({"text": texts, "fills": fills})


mlflow.models.set_model(FillMaskModel())
