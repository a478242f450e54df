"""The model registry on real MLflow (SQLite tracking store) and a real, migrated aicp DB."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from aicp.pipeline.registry import (
    AuditChainBroken,
    ModelRegistry,
    RegistryConflict,
    RegistryError,
    RegistryNotFound,
)
from aicp.pipeline.registry_audit import GENESIS
from aicp.storage.schema import model_bindings
from tests.pipeline.runner_child import migrate

#: The triggers of migration 0005 that keep registry_audit append-only.
DROP_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER registry_audit_no_update",
        "DROP TRIGGER registry_audit_no_delete",
    ],
    "postgresql": ["DROP TRIGGER registry_audit_append_only ON registry_audit"],
}


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module: creating its tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def registry(database_url: str, tracking_uri: str, tmp_path: Path) -> Iterator[ModelRegistry]:
    migrate(database_url)
    reg = ModelRegistry(database_url, data_dir=tmp_path, tracking_uri=tracking_uri)
    try:
        yield reg
    finally:
        reg.close()


def model_name() -> str:
    return f"chat-{uuid.uuid4().hex[:8]}"


def production(reg: ModelRegistry, name: str) -> str | None:
    return reg.mlflow.alias(name, "production")


def binding(reg: ModelRegistry, name: str) -> dict[str, object]:
    (row,) = [b for b in reg.bindings() if b["registered_model"] == name]
    return row


def test_register_promote_rollback_moves_alias_binding_and_chains_audit(
    registry: ModelRegistry,
) -> None:
    name = model_name()
    v1 = registry.register(name, target="openai/gpt-4o-mini", params={"temperature": 0.2})
    v2 = registry.register(name, target="anthropic/claude-haiku", actor="alice")
    assert (v1["version"], v2["version"]) == ("1", "2")
    assert v1["params"] == {"temperature": 0.2} and v1["gateway_alias"] == name

    first = registry.promote(name, "1", actor="alice")
    assert first["previous_version"] is None and first["target"] == "openai/gpt-4o-mini"
    moved = registry.promote(name, "2", actor="bob")
    assert moved == {
        "name": name,
        "version": "2",
        "previous_version": "1",
        "alias": "production",
        "gateway_alias": name,
        "target": "anthropic/claude-haiku",
        "params": {},
    }
    assert production(registry, name) == "2"
    assert binding(registry, name)["target"] == "anthropic/claude-haiku"

    back = registry.rollback(name, actor="carol")
    assert (back["version"], back["previous_version"]) == ("1", "2")
    assert production(registry, name) == "1"
    row = binding(registry, name)
    assert (row["alias"], row["version"], row["target"]) == (name, "1", "openai/gpt-4o-mini")
    assert row["params"] == {"temperature": 0.2} and row["updated_by"] == "carol"

    history = registry.history(name)
    assert [(h["action"], h["version"], h["previous_version"]) for h in history] == [
        ("register", "1", None),
        ("register", "2", None),
        ("promote", "1", None),
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
    ]
    for earlier, later in itertools.pairwise(history):
        assert later["prev_hash"] == earlier["hash"]
    assert registry.verify_audit()


def test_promote_from_staging_serves_the_staged_version(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/gpt-4o", alias=f"{name}-alias")
    staged = registry.register(
        name, target="fast-group", params={"max_tokens": 64}, stage="staging"
    )
    assert staged["aliases"] == ["staging"]
    result = registry.promote(name, from_alias="staging")
    assert result["version"] == staged["version"] == "2"
    row = binding(registry, name)
    assert (row["alias"], row["target"], row["params"]) == (
        f"{name}-alias",
        "fast-group",
        {"max_tokens": 64},
    )
    (listed,) = registry.list(name)
    assert listed["production"] == "2" and listed["in_sync"]
    assert listed["aliases"] == {"staging": "2", "production": "2"}
    assert [v["target"] for v in listed["versions"]] == ["openai/gpt-4o", "fast-group"]
    assert registry.history(name)[-1]["data"]["from_alias"] == "staging"


def test_register_with_production_stage_promotes_it(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/gpt-4o", stage="production")
    assert production(registry, name) == "1"
    assert binding(registry, name)["version"] == "1"


def test_unknown_model_or_version_is_not_found(registry: ModelRegistry) -> None:
    name = model_name()
    with pytest.raises(RegistryNotFound) as unknown:
        registry.promote("no-such-model", "1")
    assert unknown.value.status == 404
    registry.register(name, target="openai/gpt-4o")
    with pytest.raises(RegistryNotFound):
        registry.promote(name, "7")
    with pytest.raises(RegistryNotFound):
        registry.promote(name, from_alias="staging")
    with pytest.raises(RegistryNotFound):
        registry.history("no-such-model")
    with pytest.raises(RegistryError) as neither:
        registry.promote(name)
    assert neither.value.status == 400
    assert production(registry, name) is None and registry.history(name)[-1]["action"] == "register"


def test_rollback_without_an_earlier_production_version_conflicts(
    registry: ModelRegistry,
) -> None:
    name = model_name()
    registry.register(name, target="openai/gpt-4o")
    with pytest.raises(RegistryConflict) as never_promoted:
        registry.rollback(name)
    assert never_promoted.value.status == 409
    registry.promote(name, "1")
    with pytest.raises(RegistryConflict):
        registry.rollback(name)
    assert production(registry, name) == "1"


def test_each_rollback_goes_further_back_and_never_returns_to_a_rolled_back_version(
    registry: ModelRegistry,
) -> None:
    name = model_name()
    for target in ("a", "b", "c"):
        registry.register(name, target=f"openai/{target}")
    for version in ("1", "2", "3"):
        registry.promote(name, version)
    assert registry.rollback(name)["version"] == "2"
    assert registry.rollback(name)["version"] == "1"
    with pytest.raises(RegistryConflict):
        registry.rollback(name)
    # Promoting 3 again by hand trusts it again; 2 stays rolled back from.
    registry.promote(name, "3")
    assert registry.rollback(name)["version"] == "1"
    with pytest.raises(RegistryConflict):
        registry.rollback(name)
    assert production(registry, name) == "1" and registry.verify_audit()


def test_rollback_skips_a_version_promoted_twice_once_rolled_back_from(
    registry: ModelRegistry,
) -> None:
    name = model_name()
    registry.register(name, target="openai/a")
    registry.register(name, target="openai/b")
    for version in ("1", "2", "1", "2"):
        registry.promote(name, version)
    assert registry.rollback(name)["version"] == "1"
    with pytest.raises(RegistryConflict):
        registry.rollback(name)  # the only earlier one is 2, just rolled back from


def test_a_gateway_alias_drives_one_model_only(registry: ModelRegistry) -> None:
    first, second = model_name(), model_name()
    registry.register(first, target="openai/gpt-4o", alias=f"shared-{first}", stage="production")
    with pytest.raises(RegistryConflict):
        registry.register(second, target="openai/gpt-4o", alias=f"shared-{first}")
    with pytest.raises(RegistryConflict):
        registry.register(first, target="openai/gpt-4o", alias="another")


def test_a_failed_database_write_puts_the_mlflow_alias_back(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/a")
    registry.register(name, target="openai/b")
    registry.promote(name, "1")
    records = len(registry.history(name))

    def broken_clock() -> float:
        raise OSError("clock unavailable")

    registry.clock = broken_clock
    with pytest.raises(OSError):
        registry.promote(name, "2")
    assert production(registry, name) == "1"
    assert binding(registry, name)["version"] == "1"
    assert len(registry.history(name)) == records


def test_alias_taken_in_the_database_leaves_mlflow_unchanged(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/a")
    # Another process bound the alias after our register looked.
    with registry.db.write() as conn:
        row = {"registered_model": "ghost", "alias": name, "params": {}, "updated_at": 0.0}
        conn.execute(insert(model_bindings).values(**row))
    with pytest.raises(RegistryConflict):
        registry.promote(name, "1")
    assert production(registry, name) is None


def test_editing_an_audit_record_breaks_the_chain(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/a")
    registry.register(name, target="openai/b")
    registry.promote(name, "1")
    registry.promote(name, "2")
    assert registry.check_audit() >= 4
    seq = registry.history(name)[1]["seq"]
    with registry.db.write() as conn:
        for statement in DROP_TRIGGERS[conn.dialect.name]:
            conn.execute(text(statement))
        conn.execute(
            text("UPDATE registry_audit SET actor = 'mallory' WHERE seq = :seq"), {"seq": seq}
        )
    assert not registry.verify_audit()
    with pytest.raises(AuditChainBroken) as broken:
        registry.check_audit()
    assert broken.value.seq == seq


def test_a_deleted_audit_record_breaks_the_chain(registry: ModelRegistry) -> None:
    name = model_name()
    for target in ("a", "b", "c"):
        registry.register(name, target=f"openai/{target}")
    middle = registry.history(name)[1]["seq"]
    assert registry.history(name)[0]["prev_hash"] == GENESIS
    with registry.db.write() as conn:
        for statement in DROP_TRIGGERS[conn.dialect.name]:
            conn.execute(text(statement))
        conn.execute(text("DELETE FROM registry_audit WHERE seq = :seq"), {"seq": middle})
    with pytest.raises(AuditChainBroken) as broken:
        registry.check_audit()
    assert broken.value.seq is not None and broken.value.seq > middle


def test_parallel_promotes_keep_every_record_and_the_chain(
    database_url: str, tracking_uri: str, tmp_path: Path
) -> None:
    migrate(database_url)
    # Two registries on one database, as two processes would be.
    registries = [
        ModelRegistry(database_url, data_dir=tmp_path, tracking_uri=tracking_uri) for _ in range(2)
    ]
    try:
        name = model_name()
        for target in ("a", "b", "c"):
            registries[0].register(name, target=f"openai/{target}")
        jobs = [(registries[i % 2], str(i % 3 + 1)) for i in range(8)]
        start = threading.Barrier(len(jobs))
        errors: list[BaseException] = []

        def promote(reg: ModelRegistry, version: str) -> None:
            start.wait()
            try:
                reg.promote(name, version, actor=f"worker-{version}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=promote, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        reg = registries[0]
        promotes = [h for h in reg.history(name) if h["action"] == "promote"]
        assert len(promotes) == len(jobs)
        assert reg.verify_audit()
        # Each promote saw the one before it, and the last one is what is served.
        for earlier, later in itertools.pairwise(promotes):
            assert later["previous_version"] == earlier["version"]
        assert binding(reg, name)["version"] == promotes[-1]["version"]
        assert production(reg, name) == promotes[-1]["version"]
    finally:
        for r in registries:
            r.close()


def test_bad_names_targets_and_params_are_refused(registry: ModelRegistry) -> None:
    for bad in ("", "a/b", "x:y", "../up", "has space"):
        with pytest.raises(RegistryError):
            registry.register(bad, target="openai/gpt-4o")
    with pytest.raises(RegistryError):
        registry.register(model_name(), target=" ")
    with pytest.raises(RegistryError):
        registry.register(model_name(), target="openai/gpt-4o", params={"n": float("nan")})
    with pytest.raises(RegistryError):
        registry.register(model_name(), target="openai/gpt-4o", stage="latest")


def test_list_shows_only_models_aicp_manages(registry: ModelRegistry) -> None:
    name = model_name()
    registry.register(name, target="openai/gpt-4o", description="the chat model")
    registry.mlflow.client.create_registered_model(f"foreign-{name}")
    listed = {m["name"]: m for m in registry.list()}
    assert name in listed and f"foreign-{name}" not in listed
    assert listed[name]["production"] is None and listed[name]["binding"] is None
    assert listed[name]["description"] == "the chat model"
    (version,) = listed[name]["versions"]
    assert version["target"] == "openai/gpt-4o" and version["created_at"] > 0
