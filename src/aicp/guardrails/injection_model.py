"""The injection detector's learned part: a logistic regression over the words a prompt holds.

The weights come from `train_injection` and ship as data/injection_words.json. At
run time the score is one set intersection and a sum over the few words it leaves,
so it costs microseconds; the file is read on first use, from the package, never
from the network.

Beyond `spread` known words the sum is scaled down by sqrt(spread / known): a long
document holds many words that jailbreaks also use, and summed in full they made
nearly every text over a page look like one. There is no length feature for the
same reason (jailbreaks are long, most ordinary prompts short).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources


@dataclass(frozen=True, slots=True)
class WordScorer:
    bias: float
    weights: dict[bytes, float]  # the words as `base.words` gives them
    spread: int = 0  # known words summed in full; 0 sums them all
    vocabulary: frozenset[bytes] = field(init=False)  # weights' keys, for a C-speed `&`

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocabulary", frozenset(self.weights))

    def probability(self, present: frozenset[bytes]) -> float:
        known = present & self.vocabulary
        total = sum(map(self.weights.__getitem__, known))
        if self.spread and len(known) > self.spread:
            total *= math.sqrt(self.spread / len(known))
        z = self.bias + total
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def dumps(self) -> str:
        weights = {w.decode(): c for w, c in self.weights.items()}
        body = {"bias": self.bias, "spread": self.spread, "weights": weights}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> WordScorer:
        body = json.loads(text)
        weights = {str(w).encode(): float(c) for w, c in body["weights"].items()}
        return cls(float(body["bias"]), weights, int(body.get("spread", 0)))

    @classmethod
    def shipped(cls) -> WordScorer:
        data = resources.files("aicp.guardrails") / "data" / "injection_words.json"
        return cls.loads(data.read_text(encoding="utf-8"))
