"""A job's timeline in its reader's language: the events the services write (JobEvent.detail, English,
as the API and `cnet job` show them) recognised again as the messages they are (web/ translates them).

The writers keep writing plain English; this list is what they write. An event none fits (a scheduler's
own words, an operator's note) is shown as it was stored.
"""

from __future__ import annotations

from ...messages import N_, pattern, recognised

EVENTS = (
    N_("held by its owner"),
    N_("released by its owner"),
    N_("cancel requested"),
    N_("accepted; routed to %(target)s (%(policy)s)"),
    N_("submitted to %(cluster)s as %(native)s for %(user)s"),
    N_("updated by its owner: %(changes)s"),
    N_("staged %(count)s input file(s), %(size)s bytes, to %(where)s"),
    N_("suspended or held: its account has no funds"),
    N_("cancel requested: its account has no funds"),
    N_("resumed: its account has funds again"),
    N_("direct sbatch by %(user)s under Slurm account %(account)s"),
    N_("adopted from accounting"),
    N_("adopted from the queue by its comment"),
    N_("moving: %(cluster)s job %(native)s to be held and cancelled"),
    N_("not moved: it started where it was"),
    N_("re-routing failed (%(why)s); resubmitted to %(cluster)s as %(native)s"),
    N_("re-routed to %(target)s: %(why)s"),
    N_("withdrawn: %(detail)s"),
    N_("requeue requested by its owner"),
    N_("requeued: back in the queue to run again"),
    N_("a run ended by requeue (%(start)s to %(end)s UTC) is charged on its own"),
    N_("a run ended by requeue is charged on its own"),
)
_PATTERNS = [(template, pattern(template)) for template in EVENTS]


def said(detail: str | None):
    """The event's detail as a translatable message when it is one the services write."""
    return recognised(detail, _PATTERNS) if detail else detail
