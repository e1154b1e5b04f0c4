"""The pyfunc model every family logs, as code: MLflow runs this file when it loads the model.

serving.log_embedding_model / log_encoder_model / log_tfidf_model log this
file with the run's artifacts and this package (code_paths); load_context
rebuilds the predictor that the settings.json artifact names (serving.KINDS).

    input:  a DataFrame with a `review` column of strings (or a list of strings)
    output: a DataFrame of `probability` (P(positive), float) and
            `label` (1 when probability >= the stored threshold, else 0)
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from imdb_sentiment import serving


class ReviewSentimentModel(PythonModel):
    def load_context(self, context):
        self.predictor = serving.load_predictor(context.artifacts)

    # The hint is what MLflow's schema enforcement hands over (a list of strings works too when
    # called directly); without one MLflow warns, and a list[str] hint would replace the signature.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return serving.predict_frame(self.predictor, model_input)


mlflow.models.set_model(ReviewSentimentModel())
