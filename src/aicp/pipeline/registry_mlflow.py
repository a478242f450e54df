"""The registry's side of MLflow: names, tags, look-ups that raise our errors.

How a gateway route sits in MLflow: the registered model's tag `aicp.alias`
is the gateway alias it drives; a version's tags `aicp.target` and
`aicp.params` (canonical JSON) are its route; MLflow's `production` alias is
the version served, `staging` (or any other alias) a candidate.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import rfc8785

from aicp.errors import RegistryError, RegistryNotFound
from aicp.pipeline import mlflow_env

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel
    from mlflow.tracking import MlflowClient

log = logging.getLogger("aicp.pipeline.registry")

PRODUCTION = "production"
STAGING = "staging"
TAG_TARGET = "aicp.target"
TAG_PARAMS = "aicp.params"
TAG_ALIAS = "aicp.alias"

#: Registered model names we create: MLflow's rules (no '/' or ':') and usable as a
#: gateway model name and inside a search filter's quotes.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
#: MLflow alias names; `latest` and `v<n>` are MLflow's own.
MLFLOW_ALIAS = re.compile(r"[\w-]{1,255}")
RESERVED_ALIAS = re.compile(r"latest|v\d+", re.IGNORECASE)
#: model_bindings.alias and .target are String(200).
MAX_NAME = 200
MAX_PARAMS_JSON = 100_000

Record = dict[str, Any]


class MlflowModels:
    """Registered models and versions through one lazily made MlflowClient."""

    def __init__(self, tracking_uri: str, registry_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._client: MlflowClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> MlflowClient:
        with self._lock:
            if self._client is None:
                self._client = mlflow_env.client(self.tracking_uri, self.registry_uri)
            return self._client

    def model(self, name: str) -> RegisteredModel:
        if not NAME.fullmatch(name):
            raise RegistryNotFound(f"no registered model {name!r}")
        try:
            return self.client.get_registered_model(name)
        except Exception as exc:
            if mlflow_env.error_code(exc) == mlflow_env.NOT_FOUND:
                raise RegistryNotFound(f"no registered model {name!r}") from None
            raise

    def find(self, name: str) -> RegisteredModel | None:
        try:
            return self.model(name)
        except RegistryNotFound:
            return None

    def version(self, name: str, version: str) -> ModelVersion:
        missing = f"registered model {name!r} has no version {version!r}"
        if not version.isdigit():
            raise RegistryNotFound(missing)
        try:
            return self.client.get_model_version(name, version)
        except Exception as exc:
            if mlflow_env.error_code(exc) == mlflow_env.NOT_FOUND:
                raise RegistryNotFound(missing) from None
            raise

    def exists(self, name: str, version: str) -> bool:
        try:
            self.version(name, version)
        except RegistryNotFound:
            return False
        return True

    def alias(self, name: str, alias: str) -> str | None:
        """The version `alias` points at now (None: unset)."""
        return alias_of(self.model(name), alias)

    def put_back(self, name: str, alias: str, version: str | None) -> None:
        """Point `alias` at `version` again (None: remove it), after a failed move."""
        try:
            if version is None:
                self.client.delete_registered_model_alias(name, alias)
            else:
                self.client.set_registered_model_alias(name, alias, version)
        except Exception:
            log.exception("registry: could not put %s's %s alias back to %s", name, alias, version)

    def forget(self, name: str, version: str) -> None:
        """Delete a version whose registration could not be recorded."""
        try:
            self.client.delete_model_version(name, version)
        except Exception:
            log.exception("registry: could not delete unrecorded version %s of %s", version, name)

    def managed(self) -> Sequence[RegisteredModel]:
        """The registered models aicp manages (those with an `aicp.alias` tag), by name."""
        found = _pages(lambda token: self.client.search_registered_models(page_token=token))
        return sorted((rm for rm in found if TAG_ALIAS in rm.tags), key=lambda rm: rm.name)

    def versions(self, name: str) -> Sequence[ModelVersion]:
        # NAME admits no quote, so the filter needs no escaping.
        found = _pages(
            lambda token: self.client.search_model_versions(f"name = '{name}'", page_token=token)
        )
        return sorted(found, key=lambda mv: int(mv.version))


def describe(mv: ModelVersion, gateway_alias: str, aliases: Mapping[str, str]) -> Record:
    """One version as the API shows it; `aliases` are the model's (alias -> version)."""
    version = str(mv.version)
    return {
        "name": mv.name,
        "version": version,
        "target": mv.tags.get(TAG_TARGET),
        "params": params_of(mv),
        "run_id": mv.run_id,
        "aliases": sorted(a for a, v in aliases.items() if v == version),
        "gateway_alias": gateway_alias,
        "description": mv.description or "",
        "created_at": (mv.creation_timestamp or 0) / 1000,
    }


def aliases_of(rm: RegisteredModel) -> dict[str, str]:
    return {a: str(v) for a, v in rm.aliases.items()}


def alias_of(rm: RegisteredModel, alias: str) -> str | None:
    return aliases_of(rm).get(alias)


def gateway_alias_of(rm: RegisteredModel) -> str:
    alias = rm.tags.get(TAG_ALIAS)
    return alias if isinstance(alias, str) else str(rm.name)


def target_of(mv: ModelVersion) -> str:
    target = mv.tags.get(TAG_TARGET)
    if not isinstance(target, str):
        raise RegistryError(
            f"version {mv.version} of {mv.name!r} has no {TAG_TARGET} tag: register it through aicp"
        )
    return target


def params_of(mv: ModelVersion) -> Record:
    try:
        params = json.loads(mv.tags.get(TAG_PARAMS) or "{}")
    except ValueError:
        params = {}
    return params if isinstance(params, dict) else {}


# --- what register accepts -----------------------------------------------------------------


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise RegistryError(
            f"registered model name {name!r}: 1-{MAX_NAME} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def check_gateway_alias(alias: str) -> None:
    if not alias or len(alias) > MAX_NAME or alias != alias.strip():
        raise RegistryError(f"gateway alias {alias!r}: 1-{MAX_NAME} characters, no padding")


def check_mlflow_alias(alias: str) -> None:
    if not MLFLOW_ALIAS.fullmatch(alias) or RESERVED_ALIAS.fullmatch(alias):
        raise RegistryError(
            f"stage {alias!r}: letters, digits, '_' or '-' (not 'latest' or 'v<number>')"
        )


def check_route(target: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
    """The target, and the params as canonical JSON; RegistryError when unfit."""
    target = target.strip()
    if not target or len(target) > MAX_NAME:
        raise RegistryError(f"target {target!r}: a gateway model name of 1-{MAX_NAME} characters")
    try:
        text = rfc8785.dumps(dict(params or {})).decode()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise RegistryError(f"params are not plain JSON: {exc}") from None
    if len(text) > MAX_PARAMS_JSON:
        raise RegistryError(f"params: {len(text)} characters of JSON, over {MAX_PARAMS_JSON}")
    return target, text


def _pages(fetch: Callable[[str | None], Any]) -> Iterator[Any]:
    """Every item of an MLflow paged search."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return
