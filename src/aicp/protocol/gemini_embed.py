"""OpenAI embeddings <-> Google: AI Studio's batchEmbedContents and Vertex's `:predict`."""

from __future__ import annotations

import base64
import struct

from aicp.errors import InvalidRequest
from aicp.protocol.jsonutil import Json
from aicp.protocol.tokens import estimate_tokens


def embedding_inputs(body: Json) -> list[str]:
    value = body.get("input")
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(i, str) for i in items):
        raise InvalidRequest(
            "Gemini embeddings take text input; token arrays are not supported", param="input"
        )
    return [str(i) for i in items]


def embeddings_to_gemini(body: Json, model: str) -> Json:
    """An OpenAI embeddings request as a batchEmbedContents body."""
    requests = []
    for text in embedding_inputs(body):
        req: Json = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if body.get("dimensions"):
            req["outputDimensionality"] = body["dimensions"]
        requests.append(req)
    return {"requests": requests}


def embeddings_to_vertex(body: Json) -> Json:
    """An OpenAI embeddings request as a Vertex `:predict` body."""
    out: Json = {"instances": [{"content": t} for t in embedding_inputs(body)]}
    if body.get("dimensions"):
        out["parameters"] = {"outputDimensionality": body["dimensions"]}
    return out


def gemini_to_embeddings(resp: Json, body: Json, model: str) -> Json:
    vectors = [e.get("values") or [] for e in resp.get("embeddings") or []]
    tokens = sum(estimate_tokens(t) for t in embedding_inputs(body))
    return _embeddings(vectors, body, model, tokens)


def vertex_to_embeddings(resp: Json, body: Json, model: str) -> Json:
    vectors = []
    tokens = 0
    for p in resp.get("predictions") or []:
        emb = p.get("embeddings") or {}
        vectors.append(emb.get("values") or [])
        tokens += int((emb.get("statistics") or {}).get("token_count") or 0)
    if not tokens:
        tokens = sum(estimate_tokens(t) for t in embedding_inputs(body))
    return _embeddings(vectors, body, model, tokens)


def _embeddings(vectors: list[list[float]], body: Json, model: str, tokens: int) -> Json:
    b64 = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _b64(v) if b64 else v}
        for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def _b64(vector: list[float]) -> str:
    # OpenAI's base64 format: little-endian float32, which its SDKs ask for by default.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
