"""Words the portal shows that come from data, not templates (job states, roles, ledger kinds, scopes,
navigation labels): marked here so that the catalogues hold them, translated where shown with _()."""

from __future__ import annotations

from ..domain.states import JobState
from .i18n import N_

STATES = [N_("SUBMITTING"), N_("PENDING"), N_("RUNNING"), N_("SUSPENDED"), N_("COMPLETING"), N_("COMPLETED"),
          N_("FAILED"), N_("CANCELLED"), N_("TIMEOUT"), N_("NODE_FAIL"), N_("OUT_OF_MEMORY"), N_("BOOT_FAIL"),
          N_("DEADLINE"), N_("PREEMPTED"), N_("UNKNOWN"), N_("LOST")]
ROLES = [N_("operator"), N_("finance"), N_("vendor"), N_("tenant_admin"), N_("pi"), N_("member"), N_("user")]
SCOPES = [N_("full"), N_("read")]
LEDGER_KINDS = [N_("topup"), N_("hold"), N_("post"), N_("void"), N_("charge"), N_("adjustment")]
NAV = [N_("Dashboard"), N_("Jobs"), N_("Submit"), N_("Applications"), N_("Files"), N_("Billing"),
       N_("Projects"), N_("Operations")]


def missing_states() -> list[str]:
    """Job states the list above lacks (a test keeps it complete)."""
    return [s.value for s in JobState if s.value not in STATES]
