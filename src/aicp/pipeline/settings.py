"""The `pipelines` and `registry` sections of the control-plane file (docs/pipelines.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineSettings(_Strict):
    #: Run pipelines inside the gateway process (the REST API and `aicp pipeline run`).
    enabled: bool = True
    #: The durable engine's own database (DBOS). Default: `dbos.sqlite` in the data
    #: directory, or the gateway's PostgreSQL database (DBOS keeps its own schema there).
    system_database_url: str | None = Field(default=None, repr=False)
    #: MLflow tracking URI; default `sqlite:///<data_dir>/mlflow.db` with artifacts in
    #: `<data_dir>/mlartifacts`. Needs the `mlops` extra; without it runs are not tracked.
    tracking_uri: str | None = None
    tracking: bool = True
    #: This process's name for the durable engine: a process that starts takes over the
    #: unfinished runs of its id. Processes sharing one database at once need distinct
    #: ids (`AICP_PIPELINES_EXECUTOR_ID`); a replacement for a crashed one reuses its id.
    executor_id: str = Field(default="local", min_length=1, max_length=100)
    #: Ray for stages marked `distributed: true`: an address, or a local instance.
    ray_address: str | None = None
    #: Where the gateway imports pipeline code from (`module:function`, YAML `call`s),
    #: added to the front of sys.path at start-up; "." is the gateway's working directory.
    code_paths: list[str] = Field(default_factory=lambda: ["."])


class RegistrySettings(_Strict):
    #: How often every gateway process re-reads the aliases registered models drive.
    sync_s: float = Field(default=0.5, gt=0, le=60)
