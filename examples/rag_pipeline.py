"""Retrieval-augmented answers as a durable pipeline run by the gateway.

Chunk the documents in `rag_docs/`, embed them through the gateway, build an
index, answer questions with the retrieved chunks as context, and stop the run
if an answer does not cite its sources. Every model call goes through the
gateway's request path (keys, policy, budgets, receipts), so the run's cost is
the sum of its receipts. `rag_pipeline.yaml` is the same pipeline in YAML.

    make run                                   # the gateway, in another terminal
    AICP_API_KEY=<admin key> python examples/rag_pipeline.py

The gateway imports this module (python stages run inside it), so start it
from the repository's root, and use an admin key (running imported code is
an admin's right). AICP_CHAT_MODEL and AICP_EMBED_MODEL pick the models.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aicp.pipeline import llm, pipeline, stage, validate
from aicp.pipeline.model import StageContext

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    "What happens when a circuit breaker opens?",
    "How does the gateway stop a key from overspending?",
]
SOURCE = re.compile(r"\[([A-Za-z0-9_.-]+)\]")
#: Read where the pipeline is compiled (in the gateway, for runs it starts).
CHAT_MODEL = os.environ.get("AICP_CHAT_MODEL", "gpt-4o-mini")
EMBED_MODEL = os.environ.get("AICP_EMBED_MODEL", "text-embedding-3-small")


class Chunk(BaseModel):
    id: str
    source: str
    text: str


class Index(BaseModel):
    chunks: list[Chunk]
    vectors: list[list[float]]


class Answer(BaseModel):
    question: str
    text: str
    #: The documents the answer cites that were in its context.
    sources: list[str]


@stage
def load_documents(folder: str) -> dict[str, str]:
    """Every markdown file of `folder` (relative to this file): name -> text."""
    path = Path(folder) if Path(folder).is_absolute() else HERE / folder
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(path.glob("*.md"))}


@stage
def chunk(documents: dict[str, str], size: int = 400) -> list[Chunk]:
    """Paragraphs packed into chunks of at most `size` characters, each from one document."""
    out: list[Chunk] = []
    for source, text in documents.items():
        current = ""
        for para in (p.strip() for p in text.split("\n\n")):
            if current and len(current) + len(para) > size:
                out.append(Chunk(id=f"{source}-{len(out)}", source=source, text=current))
                current = ""
            current = f"{current}\n\n{para}".strip()
        if current:
            out.append(Chunk(id=f"{source}-{len(out)}", source=source, text=current))
    return out


@stage
def texts(chunks: list[Chunk]) -> list[str]:
    return [c.text for c in chunks]


@stage
def build_index(chunks: list[Chunk], vectors: list[list[float]]) -> Index:
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    return Index(chunks=chunks, vectors=vectors)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@stage
def answer(
    ctx: StageContext, index: Index, questions: list[str], model: str, embed_model: str, k: int
) -> list[Answer]:
    """Each question with its `k` nearest chunks as context, answered through the gateway."""
    asked = ctx.llm.embed(embed_model, questions)
    ctx.record_receipt(asked.receipt_id, asked.cost_usd)
    out = []
    for question, vector in zip(questions, asked.vectors, strict=True):
        ranked = sorted(range(len(index.chunks)), key=lambda i: -_cosine(vector, index.vectors[i]))
        context = [index.chunks[i] for i in ranked[:k]]
        listing = "\n\n".join(f"[{c.source}] {c.text}" for c in context)
        reply = ctx.llm.chat(
            model,
            [
                {
                    "role": "system",
                    "content": "Answer from the context only. Cite each document you use "
                    "by its name in square brackets, e.g. [breakers].",
                },
                {"role": "user", "content": f"Context:\n{listing}\n\nQuestion: {question}"},
            ],
            temperature=0,
        )
        ctx.record_receipt(reply.receipt_id, reply.cost_usd)
        known = {c.source for c in context}
        cited = [s for s in dict.fromkeys(SOURCE.findall(reply.text)) if s in known]
        out.append(Answer(question=question, text=reply.text, sources=cited))
    return out


@pipeline(name="rag", description="Answer questions from rag_docs/ with cited sources.")
def rag(
    folder: str = "rag_docs",
    questions: list[str] = QUESTIONS,
    model: str = CHAT_MODEL,
    k: int = 2,
) -> None:
    documents = load_documents(folder)
    chunks = chunk(documents)
    vectors = llm("embed", operation="embed", model=EMBED_MODEL, inputs={"texts": texts(chunks)})
    index = build_index(chunks, vectors)
    answers = answer(index, questions, model, EMBED_MODEL, k)
    validate(
        "cites_sources",
        inputs={"value": answers},
        checks=[
            {
                "check": "min_length",
                "path": "*.sources",
                "value": 1,
                "message": "every answer cites a document of its context",
            },
        ],
    )


def main() -> int:
    from aicp.pipeline.client import PipelineClient

    client = PipelineClient.from_env()
    run = client.start(ref="examples.rag_pipeline:rag")
    run = client.wait(run["id"])
    print(f"run {run['id']}: {run['status']}, cost ${run['cost_usd']:.6f}")
    answers: list[dict[str, Any]] = (run["stages"].get("answer") or {}).get("output") or []
    for a in answers:
        print(f"\nQ: {a['question']}\nA: {a['text']}\n   sources: {', '.join(a['sources'])}")
    if run["status"] != "succeeded":
        print(run.get("error") or "the run did not succeed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
