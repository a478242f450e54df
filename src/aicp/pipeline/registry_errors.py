"""What the model registry refuses, with the HTTP status each means.

    RegistryError             400 a malformed request (bad name, target, params)
    +-- RegistryNotFound      404 unknown registered model, version or alias
    +-- RegistryConflict      409 nothing to roll back to; a gateway alias taken
    AuditChainBroken          500 the audit log's hash chain does not verify

They are AicpErrors, so the API's one error handler renders them as it does
every other error.
"""

from __future__ import annotations

from aicp.errors import AicpError, RequestError


class RegistryError(RequestError):
    code = "registry_error"


class RegistryNotFound(RegistryError):
    status = 404
    kind = "not_found_error"
    code = "registry_not_found"


class RegistryConflict(RegistryError):
    status = 409
    code = "registry_conflict"


class AuditChainBroken(AicpError):
    code = "audit_chain_broken"

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        #: The first record that does not verify (None: the chain as a whole).
        self.seq = seq
