"""The HTTP app `make serve` runs: MLflow's scoring server for a review model, behind a check
of each JSON request's reviews.

    uvicorn --factory imdb_sentiment.serve_app:make_app    (models/serve.py starts it, with the
                                                            model's local folder in MLflow's
                                                            _SERVER_MODEL_PATH variable)

Why a check in front of MLflow's server: its schema enforcement casts what the `inputs` and
`instances` formats carry to strings before the model sees it, so `{"inputs": [42]}` was
scored as the review "42" (and a null as "None") with a 200. Here every format MLflow accepts
(dataframe_split, dataframe_records, inputs, instances) is read the same way, and a request
without a `review` column, with no reviews, or with a review that is not a string gets a 400
with one line naming what was expected, as the model itself answers such a DataFrame
(serving.reviews_from_input). Anything else passes to MLflow's app untouched.
"""

import json
import os

FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")


def _reviews(payload):
    """(the reviews a request carries, or None where the format is not one this can read,
    or a problem string)."""
    key = next((name for name in FORMATS if isinstance(payload, dict) and name in payload), None)
    if key is None:
        return None
    body = payload[key]
    if key == "dataframe_split":
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return None
        columns = body.get("columns") or []
        if "review" not in columns:
            return f"expected a `review` column of strings; the input has columns {columns}"
        index = columns.index("review")
        return [row[index] if isinstance(row, list) and len(row) > index else None for row in body["data"]]
    if isinstance(body, dict):  # {"review": [...]} or {"review": "one"}
        if "review" not in body:
            return f"expected a `review` column of strings; the input has columns {sorted(body)}"
        return body["review"] if isinstance(body["review"], list) else [body["review"]]
    if isinstance(body, list):
        if body and all(isinstance(row, dict) for row in body):  # records
            missing = [row for row in body if "review" not in row]
            if missing:
                return f"expected a `review` column of strings; the input has columns {sorted(missing[0])}"
            return [row["review"] for row in body]
        if any(isinstance(row, dict) for row in body):
            return "expected records that each have a `review`, or a list of strings"
        return body  # a plain list of reviews
    if body is None:
        return "expected reviews: the input is null"
    return [body]


def request_problem(raw: bytes) -> str | None:
    """What is wrong with a JSON request body for a review model, in one line; None if nothing
    this checks is (a body that is not JSON or not in these formats is left to MLflow)."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    reviews = _reviews(payload)
    if reviews is None or isinstance(reviews, str):
        return reviews
    if not reviews:
        return "no reviews to score: the input is empty"
    for row, review in enumerate(reviews):
        if not isinstance(review, str):
            found = "a missing value" if review is None else f"{type(review).__name__} {review!r}"
            return f"review {row}: expected a string, got {found}"
    return None


class CheckedReviews:
    """ASGI middleware: POST /invocations with a JSON body is checked (request_problem) before
    the wrapped app sees it; a problem is answered 400 as MLflow answers its own
    (error_code INVALID_PARAMETER_VALUE, message)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/invocations":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b""):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = request_problem(body)
        if problem:
            answer = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": problem}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(answer)).encode())]})
            await send({"type": "http.response.body", "body": answer})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def make_app():
    """MLflow's scoring app for the model in $_SERVER_MODEL_PATH, behind CheckedReviews."""
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])
    return CheckedReviews(scoring_server.init(model))
