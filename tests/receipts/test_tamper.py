"""Tampering is detected: a flipped byte, a deleted tail, a forked log, a forged bundle.

A real gateway writes the log (SQLite in a data directory); then we attack the
database the way someone with write access would (dropping the append-only
triggers first) and run `aicp receipts verify` / `verify-bundle` as a user would.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing import GatewayServer
from tests.helpers import make_settings

N = 12


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose log holds N receipts and a checkpoint of all of them."""
    settings = make_settings(
        {
            "providers": {"mock": {"type": "mock"}},
            "storage": {"data_dir": str(tmp_path)},
            "receipts": {"bodies": "full"},
        }
    )
    with GatewayServer(settings) as gw, httpx.Client(base_url=gw.url) as c:
        for i in range(N):
            r = c.post(
                "/v1/chat/completions",
                json={"model": "mock/mock-1", "messages": [{"role": "user", "content": f"m{i}"}]},
            )
            assert r.status_code == 200
        assert c.post("/v1/receipts/checkpoint").json()["tree_size"] == N
    return tmp_path


def cli(data_dir: Path, *args: str) -> tuple[int, str]:
    """Exit code and stdout + stderr; for `--json`, stdout alone (logs go to stderr)."""
    result = CliRunner().invoke(app, list(args), env={"AICP_DATA_DIR": str(data_dir)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout if "--json" in args else result.output


def attack(data_dir: Path, *statements: str) -> None:
    with sqlite3.connect(data_dir / "aicp.db") as conn:
        for trigger in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f"DROP TRIGGER {trigger[0]}")
        for statement in statements:
            conn.execute(statement)


def test_an_untouched_log_verifies(data_dir: Path) -> None:
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 0, out
    assert "OK" in out and f"{N} receipts" in out


def test_one_flipped_byte_in_a_stored_receipt_is_detected(data_dir: Path) -> None:
    # The status inside leaf 5's canonical JSON: "status":200 -> "status":201.
    attack(
        data_dir,
        "UPDATE receipts SET data = CAST(REPLACE(CAST(data AS TEXT), '\"status\":200', "
        "'\"status\":201') AS BLOB) WHERE leaf_index = 5",
    )
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 1
    assert "leaf 5" in out and "does not match its leaf hash" in out


def test_a_receipt_rewritten_with_its_hash_breaks_the_signed_root(data_dir: Path) -> None:
    # A careful attacker also recomputes the leaf hash; the checkpoint still catches it.
    with sqlite3.connect(data_dir / "aicp.db") as conn:
        data = conn.execute("SELECT data FROM receipts WHERE leaf_index = 3").fetchone()[0]
    forged = bytes(data).replace(b'"status":200', b'"status":201')
    import hashlib

    leaf = hashlib.sha256(b"\x00" + forged).hexdigest()
    attack(
        data_dir,
        f"UPDATE receipts SET data = X'{forged.hex()}', leaf_hash = X'{leaf}' WHERE leaf_index = 3",
    )
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 1
    assert f"checkpoint of size {N} does not match the log" in out


def test_a_deleted_tail_is_detected(data_dir: Path) -> None:
    attack(data_dir, f"DELETE FROM receipts WHERE leaf_index >= {N - 2}")
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 1
    assert "truncated" in out


def test_a_deleted_middle_receipt_is_detected(data_dir: Path) -> None:
    attack(data_dir, "DELETE FROM receipts WHERE leaf_index = 4")
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 1
    assert "leaf 4 is missing" in out


def test_a_log_forked_at_equal_size_is_detected_against_a_published_checkpoint(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    published = tmp_path_factory.mktemp("auditor") / "checkpoint.json"
    code, out = cli(data_dir, "receipts", "checkpoint", "--json")
    assert code == 0
    published.write_text(out)
    # An insider with the signing key rewrites history: other receipts, same size,
    # a freshly signed checkpoint. The log is self-consistent again...
    with sqlite3.connect(data_dir / "aicp.db") as conn:
        rows = conn.execute("SELECT leaf_index, data FROM receipts").fetchall()
    import hashlib

    statements = ["DELETE FROM receipt_nodes", "DELETE FROM receipt_checkpoints"]
    for index, data in rows:
        forged = bytes(data).replace(b'"mode":"live"', b'"mode":"offline"')
        leaf = hashlib.sha256(b"\x00" + forged).hexdigest()
        statements.append(
            f"UPDATE receipts SET data = X'{forged.hex()}', leaf_hash = X'{leaf}' "
            f"WHERE leaf_index = {index}"
        )
    attack(data_dir, *statements)
    _rebuild_nodes(data_dir)
    code, out = cli(data_dir, "receipts", "checkpoint")
    assert code == 0
    code, out = cli(data_dir, "receipts", "verify")
    assert code == 0, out  # ...on its own,
    code, out = cli(data_dir, "receipts", "verify", "--against", str(published))
    assert code == 1  # but not against what the auditor saw before
    assert "fork" in out


def _rebuild_nodes(data_dir: Path) -> None:
    from aicp.receipts import merkle

    with sqlite3.connect(data_dir / "aicp.db") as conn:
        leaves = [
            bytes(r[0]) for r in conn.execute("SELECT leaf_hash FROM receipts ORDER BY leaf_index")
        ]
        edge: list[tuple[int, bytes]] = []
        for i, leaf in enumerate(leaves):
            for level, idx, digest in merkle.complete_nodes_after_append(i, leaf, edge):
                conn.execute(
                    "INSERT INTO receipt_nodes (level, idx, hash) VALUES (?, ?, ?)",
                    (level, idx, digest),
                )


def test_an_exported_bundle_verifies_offline_and_a_forged_one_does_not(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out_dir = tmp_path_factory.mktemp("bundles")
    with sqlite3.connect(data_dir / "aicp.db") as conn:
        rid = conn.execute("SELECT id FROM receipts WHERE leaf_index = 7").fetchone()[0]
    bundle_file = out_dir / "bundle.json"
    code, out = cli(data_dir, "receipts", "export", rid, "-o", str(bundle_file))
    assert code == 0, out
    key = json.loads(cli(data_dir, "receipts", "checkpoint", "--json")[1])["verifier_key"]
    # Offline: no data directory, no database.
    code, out = cli(out_dir, "receipts", "verify-bundle", str(bundle_file), "--key", key)
    assert code == 0, out
    assert f"receipt {rid} is leaf 7" in out

    bundle = json.loads(bundle_file.read_text())
    bundle["receipt"]["usage"]["completion_tokens"] += 1
    forged = out_dir / "forged.json"
    forged.write_text(json.dumps(bundle))
    code, out = cli(out_dir, "receipts", "verify-bundle", str(forged), "--key", key)
    assert code == 1 and "not included" in out

    bundle = json.loads(bundle_file.read_text())
    bundle["checkpoint"] = bundle["checkpoint"].replace(f"\n{N}\n", f"\n{N + 1}\n")
    forged.write_text(json.dumps(bundle))
    code, out = cli(out_dir, "receipts", "verify-bundle", str(forged), "--key", key)
    assert code == 1 and "signature does not verify" in out

    other = tmp_path_factory.mktemp("other-log")
    other_key = json.loads(cli(other, "receipts", "checkpoint", "--json")[1])["verifier_key"]
    code, out = cli(out_dir, "receipts", "verify-bundle", str(bundle_file), "--key", other_key)
    assert code == 1 and "no signature by" in out


def test_verify_bundle_checks_body_files_against_the_hashes(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out_dir = tmp_path_factory.mktemp("bodies")
    with sqlite3.connect(data_dir / "aicp.db") as conn:
        rid, request = conn.execute(
            "SELECT receipt_id, request FROM receipt_bodies LIMIT 1"
        ).fetchone()
    bundle_file = out_dir / "bundle.json"
    assert cli(data_dir, "receipts", "export", rid, "-o", str(bundle_file))[0] == 0
    body = out_dir / "request.json"
    body.write_bytes(request)
    code, out = cli(out_dir, "receipts", "verify-bundle", str(bundle_file), "--request", str(body))
    assert code == 0, out
    body.write_bytes(request + b" ")
    code, out = cli(out_dir, "receipts", "verify-bundle", str(bundle_file), "--request", str(body))
    assert code == 1 and "is not the request body" in out
