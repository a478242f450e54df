"""Model names, aliases, groups and deployments, and the order routes are tried in.

A requested name resolves, in this order, to: a configured model, an alias
(followed to its target), a group (the union of its models' deployments),
`provider/model` for any configured provider, or a bare model name that
exactly one provider lists. The strategy of the resolved entry orders its
deployments; its fallbacks' chains follow.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aicp.config import DeploymentSettings, Settings
from aicp.errors import AmbiguousModel, ConfigError, ModelNotFound
from aicp.providers.base import Provider
from aicp.reliability.breaker import Breaker
from aicp.reliability.health import DeploymentHealth

#: Hears every breaker's changes: (deployment key, breaker, previous state).
BreakerListener = Callable[[str, Breaker, str], None]


@dataclass(slots=True, eq=False)
class Deployment:
    provider: Provider
    model: str  # the upstream model name
    health: DeploymentHealth
    weight: float = 1.0
    priority: int = 0
    cost: float = 0.0  # input + output USD per million tokens, for lowest_cost

    @property
    def key(self) -> str:
        return f"{self.provider.name}/{self.model}"


@dataclass(slots=True)
class Entry:
    name: str
    deployments: list[Deployment]
    strategy: str = "priority"
    fallbacks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Route:
    model: str  # the name the client asked for
    chain: list[Deployment]
    forced: bool = False
    #: A forced route an admin sent although the policies forbid it.
    overridden: bool = False
    #: The strategy of the entry the client named (`learned` is applied by the route stage).
    strategy: str = "priority"
    #: Set when the name is an alias a registered model drives (routing/bindings.py).
    binding: Binding | None = None

    def describe(self) -> list[str]:
        return [d.key for d in self.chain]


@dataclass(frozen=True, slots=True)
class Binding:
    """A gateway alias moved by the model registry: its target and version's parameters."""

    registered_model: str
    version: str
    target: str
    #: Request parameters the version serves with; the client's own values win.
    params: Mapping[str, object] = field(default_factory=dict)

    def defaults_for(self, body: Mapping[str, object]) -> dict[str, object]:
        """The version's parameters the client's body does not set (what it adds)."""
        return {k: v for k, v in self.params.items() if k not in body}


Order = Callable[[Sequence[Deployment], random.Random], list[Deployment]]


def _weighted_shuffle(items: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    # Efraimidis-Spirakis: sort by u**(1/w); a zero weight goes last.
    def key(d: Deployment) -> float:
        return rng.random() ** (1.0 / d.weight) if d.weight > 0 else -1.0

    return sorted(items, key=key, reverse=True)


def _priority(items: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    shuffled = _weighted_shuffle(items, rng) if len(items) > 1 else list(items)
    return sorted(shuffled, key=lambda d: d.priority)


def _least_latency(items: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    # Unmeasured deployments sort first, so every deployment gets measured.
    return sorted(_weighted_shuffle(items, rng), key=lambda d: d.health.ewma_ms or 0.0)


def _lowest_cost(items: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    return sorted(_weighted_shuffle(items, rng), key=lambda d: d.cost)


STRATEGIES: dict[str, Order] = {
    "priority": _priority,
    "weighted": _weighted_shuffle,
    "least_latency": _least_latency,
    "lowest_cost": _lowest_cost,
    # Ordered by the route stage from route memory (routing/learned.py), among the routes
    # the policies allow; until then (and without route memory) by priority.
    "learned": _priority,
}


class Router:
    def __init__(
        self,
        settings: Settings,
        providers: Mapping[str, Provider],
        catalog: Mapping[str, list[str]],
        rng: random.Random | None = None,
        on_breaker: BreakerListener | None = None,
    ) -> None:
        self.settings = settings
        self.providers = providers
        self.on_breaker = on_breaker
        #: provider name -> model names it serves (configured or discovered)
        self.catalog = catalog
        self.rng = rng or random.Random()
        self._health: dict[str, DeploymentHealth] = {}
        self.entries: dict[str, Entry] = {}
        #: Entries made on demand for `provider/model` and bare names.
        self._direct_entries: dict[str, Entry] = {}
        self.aliases = dict(settings.aliases)
        #: alias -> what the registry bound it to (replaces `aliases` entries of the same name).
        self.bindings: dict[str, Binding] = {}
        self._bare: dict[str, list[str]] = {}
        for provider_name, models in catalog.items():
            for m in models:
                self._bare.setdefault(m, []).append(provider_name)
        for model in settings.models:
            if model.name in self.entries:
                raise ConfigError(f"{settings.source}: model {model.name!r} is defined twice")
            deps = [self._deployment(d, model.name) for d in model.deployments]
            self.entries[model.name] = Entry(model.name, deps, model.strategy, model.fallbacks)
        for name, group in settings.groups.items():
            if name in self.entries:
                raise ConfigError(f"{settings.source}: group {name!r} has the name of a model")
            deps = []
            for member in group.models:
                deps.extend(self._check(member, set(), f"group {name!r}").deployments)
            self.entries[name] = Entry(name, deps, group.strategy, group.fallbacks)
        for name, target in self.aliases.items():
            self._check(target, {name}, f"alias {name!r}")
        for entry in list(self.entries.values()):
            for fb in entry.fallbacks:
                self._check(fb, set(), f"the fallbacks of {entry.name!r}")

    # --- building ---------------------------------------------------------------

    def health_for(
        self, provider: str, model: str, rpm: int | None = None, max_concurrency: int | None = None
    ) -> DeploymentHealth:
        key = f"{provider}/{model}"
        health = self._health.get(key)
        if health is None:
            listener = self.on_breaker
            on_change = None if listener is None else functools.partial(listener, key)
            breaker = self.settings.reliability.breaker
            health = DeploymentHealth(breaker, rpm, max_concurrency, on_change)
            self._health[key] = health
        return health

    def _deployment(self, d: DeploymentSettings, owner: str) -> Deployment:
        provider = self.providers.get(d.provider)
        if provider is None:
            raise ConfigError(
                f"{self.settings.source}: model {owner!r} uses provider {d.provider!r}, "
                f"which is not configured (have: {', '.join(sorted(self.providers))})"
            )
        # rpm is not the health's: the rate limiter enforces it, across processes too.
        health = self.health_for(d.provider, d.model, None, d.max_concurrency)
        return Deployment(
            provider,
            d.model,
            health,
            d.weight,
            d.priority,
            d.input_cost_per_mtok + d.output_cost_per_mtok,
        )

    def _check(self, name: str, seen: set[str], where: str) -> Entry:
        """Resolve a name the configuration refers to; a name that fails is a config error."""
        try:
            return self._resolve_entry(name, seen)
        except (ModelNotFound, AmbiguousModel) as exc:
            raise ConfigError(f"{self.settings.source}: {where}: {exc.message}") from exc

    # --- resolving ----------------------------------------------------------------

    def _resolve_entry(self, name: str, seen: set[str]) -> Entry:
        entry = self.entries.get(name) or self._direct_entries.get(name)
        if entry is not None:
            return entry
        target = self.aliases.get(name)
        if target is not None:
            if target in seen or target == name:
                raise ConfigError(f"{self.settings.source}: alias cycle through {name!r}")
            return self._resolve_entry(target, {*seen, name})
        provider_name, slash, model = name.partition("/")
        owners = self._bare.get(name, [])
        if slash and provider_name in self.providers and model:
            entry = Entry(name, [self._direct(provider_name, model)])
        elif len(owners) == 1:
            entry = Entry(name, [self._direct(owners[0], name)])
        else:
            entry = None
        if entry is not None:
            # Bounded: a client can name any `provider/model`, and we must not grow forever.
            if len(self._direct_entries) < 10_000:
                self._direct_entries[name] = entry
            return entry
        if len(owners) > 1:
            options = ", ".join(f"{p}/{name}" for p in sorted(owners))
            raise AmbiguousModel(
                f"model {name!r} is served by several providers; use one of: {options}"
            )
        raise ModelNotFound(f"the model {name!r} does not exist or you do not have access to it")

    def _direct(self, provider_name: str, model: str) -> Deployment:
        health = self.health_for(provider_name, model)
        return Deployment(self.providers[provider_name], model, health)

    def resolve(self, name: str) -> Route:
        entry = self._resolve_entry(name, set())
        # One upstream deployment is tried once per request, however many entries name it
        # (a model and a fallback may both reach `provider/model`, a group two models).
        chain: list[Deployment] = []
        seen: set[str] = set()
        for e in (entry, *(self._resolve_entry(fb, set()) for fb in entry.fallbacks)):
            for d in self._order(e):
                if d.key not in seen:
                    seen.add(d.key)
                    chain.append(d)
        return Route(name, chain, strategy=entry.strategy, binding=self.bindings.get(name))

    def forced(self, name: str) -> Route:
        entry = self._resolve_entry(name, set())
        return Route(name, self._order(entry)[:1], forced=True)

    def _order(self, entry: Entry) -> list[Deployment]:
        deps = entry.deployments
        if len(deps) == 1:
            return [deps[0]]
        return STRATEGIES[entry.strategy](deps, self.rng)

    def bind(self, found: Mapping[str, Binding]) -> list[str]:
        """Make `found` (alias -> binding) the registry's aliases, in one assignment per
        alias so a request sees the old target or the new one, never a mix. A binding
        whose target does not resolve is left out (and named in the returned problems)."""
        problems: list[str] = []
        usable: dict[str, Binding] = {}
        for alias, b in found.items():
            if alias in self.entries:
                problems.append(f"alias {alias!r} of {b.registered_model!r} is a model's name")
                continue
            try:
                self._resolve_entry(b.target, {alias})
            except (ModelNotFound, AmbiguousModel, ConfigError) as exc:
                problems.append(f"{b.registered_model} v{b.version}: {exc}")
                continue
            usable[alias] = b
        for alias in set(self.bindings) - usable.keys():
            original = self.settings.aliases.get(alias)
            if original is None:
                self.aliases.pop(alias, None)
            else:
                self.aliases[alias] = original
        for alias, b in usable.items():
            self.aliases[alias] = b.target
        self.bindings = usable
        return problems

    # --- views ----------------------------------------------------------------------

    def model_names(self) -> list[str]:
        names = list(self.entries)
        names.extend(self.aliases)
        for provider_name, models in self.catalog.items():
            names.extend(f"{provider_name}/{m}" for m in models)
        return sorted(dict.fromkeys(names))

    def health(self) -> dict[str, DeploymentHealth]:
        return dict(self._health)
