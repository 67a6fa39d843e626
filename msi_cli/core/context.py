"""What every core operation works on: the state, the simulated time, the key ring, the log."""

from __future__ import annotations

from typing import Protocol

from msi_cli.core.timefmt import iso
from msi_cli.core.model import KeyCredential, SigningKey, State
from msi_cli.core.datatype import field, record


class KeyRing(Protocol):
    """Holds private key material outside the state. The store provides the real one."""

    def new_signing_key(self, tenant_id: str, created: int, signs_until: int, published_until: int) -> SigningKey: ...

    def new_identity_certificate(self, app_id: str, start: int, end: int) -> KeyCredential: ...

    def new_issuer_key(self, issuer_name: str, created: int, until: int) -> str: ...

    def signing_key_pem(self, kid: str) -> bytes: ...

    def certificate_pem(self, thumbprint: str) -> bytes: ...

    def public_certificate_der(self, kid: str) -> bytes: ...


@record
class Event:
    """One entry of the activity log."""

    time: str
    operation: str
    target: str
    outcome: str = "Succeeded"
    detail: str = ""


@record
class Ctx:
    state: State
    now: int  # simulated epoch seconds
    keys: KeyRing
    events: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for the user, once the change is saved

    @property
    def now_iso(self) -> str:
        return iso(self.now)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def log(self, operation: str, target: str, detail: str = "", outcome: str = "Succeeded") -> None:
        self.events.append(Event(self.now_iso, operation, target, outcome, detail))
