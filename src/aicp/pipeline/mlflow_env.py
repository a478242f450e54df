"""MLflow for the tracker and the registry: imported late, kept off the network.

Importing mlflow takes seconds, so nothing imports it until a tracker or the
registry first talks to it. Before that import the environment is set so that
mlflow 3.x sends no telemetry (it reads `MLFLOW_DISABLE_TELEMETRY` and
`DO_NOT_TRACK` when `import mlflow` starts its telemetry client) and prints no
hint for coding agents. Without a configured URI, runs and the registry live
in `<data_dir>/mlflow.db` and artifacts under `<data_dir>/mlartifacts`: left
to itself mlflow would write them to `./mlruns` in whatever the working
directory happens to be.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from aicp.errors import ConfigError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: Set before mlflow is imported; the telemetry switch wins over a user's setting.
FORCED_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # mlflow's own test switch turns telemetry back on whatever else says.
    "_MLFLOW_TESTING_TELEMETRY": "false",
}
#: Set unless the user chose otherwise.
DEFAULT_ENV = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_AGENT_HINT": "1"}

TRACKING_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"

#: MLflow's error code for a missing experiment, run, model, version or alias.
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"


def default_tracking_uri(data_dir: Path) -> str:
    """The SQLite tracking (and registry) store inside the data directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / TRACKING_FILE).resolve()}"


def artifact_location(data_dir: Path, experiment: str) -> str:
    """A `file:` URI for one experiment's artifacts under `<data_dir>/mlartifacts`."""
    slug = re.sub(r"[^\w.-]+", "_", experiment).strip("._") or "experiment"
    return (data_dir / ARTIFACTS_DIR / slug).resolve().as_uri()


def quiet_environment(tracking_uri: str = "") -> None:
    os.environ.update(FORCED_ENV)
    for key, value in DEFAULT_ENV.items():
        os.environ.setdefault(key, value)
    if tracking_uri.startswith("file:"):
        # mlflow 3 refuses its (maintenance-mode) file store unless told that it
        # is wanted; a configured file: URI says so.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """An MlflowClient for the URIs, importing mlflow (quietly) on first use."""
    quiet_environment(tracking_uri)
    try:
        from mlflow.telemetry.client import get_telemetry_client, set_telemetry_client
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"MLflow tracking needs {exc.name!r}: `pip install 'aicp[mlops]'`"
        ) from None
    if get_telemetry_client() is not None:
        # mlflow was imported before our environment was set: drop its client now.
        set_telemetry_client()  # type: ignore[no-untyped-call]  # unannotated in mlflow
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of `exc` (None for anything that is not an MlflowException)."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None
