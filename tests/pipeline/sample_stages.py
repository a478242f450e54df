"""Stages and pipelines that the pipeline-definition tests (and their YAML files) name."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from aicp.pipeline.dsl import after, approval, llm, pipeline, stage, validate
from aicp.pipeline.model import StageContext


class Document(BaseModel):
    source: str
    text: str


class Invoice(BaseModel):
    total: float


@stage
def load_documents(folder: str, limit: int = 10) -> list[Document]:
    return [Document(source=f"{folder}/{i}.txt", text=f"text {i}") for i in range(limit)]


@stage(retries=2, backoff_s=0.5, timeout_s=30, resources={"distributed": True, "num_cpus": 1})
def chunk(docs: list[Document], size: int = 200) -> list[str]:
    return [d.text[i : i + size] for d in docs for i in range(0, len(d.text), size)]


@stage
def count(chunks: list[str]) -> int:
    return len(chunks)


def numbers(n: int) -> list[int]:
    return list(range(n))


def first_document(docs: list[Document]) -> Document:
    return docs[0]


def read_document(doc: Document) -> str:
    return doc.text


def total_of(invoice: Invoice) -> float:
    return invoice.total


def with_context(ctx: StageContext, text: str) -> str:
    return f"{ctx.run_id}: {text}"


def anything(**values: Any) -> dict[str, Any]:
    return values


def untyped(value, scale=2):  # type: ignore[no-untyped-def]  # unannotated on purpose
    return value * scale


NOT_CALLABLE = 42


@pipeline(name="rag", concurrency=2, description="Answer a question from a folder")
def rag(folder: str = "docs", k: int = 3, question: str = "What?") -> None:
    docs = load_documents(folder, limit=10)
    chunks = chunk(docs, size=200)
    answer = llm(
        "answer",
        model="chat",
        prompt="Answer {question} from {context}",
        inputs={"question": question, "context": chunks},
    )
    ok = validate("check", inputs={"value": answer}, checks=[{"check": "not_empty"}])
    approval("ship", after=[ok], timeout_s=3600, default="reject", message="Ship it?")
    with after(ok):
        count(chunks)
