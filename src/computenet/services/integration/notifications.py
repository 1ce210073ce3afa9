"""Telling people about their money: low balance, and blocks at the clusters.

Notices are stored per user (the API and `cnet notifications` show them)
and keyed, so a watch that runs every 30 seconds says each thing once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...billing import funds
from ...domain.money import MoneyError, to_decimal
from ...messages import N_, Money, Text, msg
from ...store.models import Account, AccountMember, Notification, User
from ...store.types import utcnow
from ..errors import InvalidRequest, NotFound
from ..platform import Platform


# Every notice is made from one of these (English stored, as the API and `cnet notifications` show it);
# the portal matches a stored notice back to its template to say it in the reader's language.
LOW_BALANCE = N_("account %(account)s: %(available)s available, below the %(threshold)s you asked to hear about. "
                 "Top up to keep jobs running.")
BLOCKED = N_("account %(account)s is blocked on %(cluster)s (Slurm account %(slurm_account)s): no funds left for "
             "new jobs. Top up to lift the block.")
UNBLOCKED = N_("account %(account)s is open again on %(cluster)s (Slurm account %(slurm_account)s).")
RESTORED = N_("account %(account)s has funds again (%(available)s available); jobs held for lack of funds are "
              "resumed.")
EXHAUSTED_BLOCK = N_("account %(account)s is %(arrears)s in arrears. New jobs are refused until you top up.")
EXHAUSTED_HOLD = N_("account %(account)s is %(arrears)s in arrears. Unless you top up before %(deadline)s UTC, its "
                    "running jobs will be suspended and its waiting jobs held.")
EXHAUSTED_CANCEL = N_("account %(account)s is %(arrears)s in arrears. Unless you top up before %(deadline)s UTC, "
                      "its running and waiting jobs will be cancelled.")
JOB_LOST = N_("job %(job)s (%(name)s) was lost by cluster %(cluster)s (%(detail)s); it was not charged and its "
              "reserved funds are released. Submit it again if you still need it.")
JOB_WITHDRAWN = N_("job %(job)s (%(name)s) was withdrawn: %(detail)s. Nothing was charged; submit it again.")
IDLE_GPU = N_("job %(job)s (%(name)s) on %(cluster)s has kept its %(gpus)s GPU(s) idle for %(minutes)s minutes; "
              "cancel it if it is stuck")
IDLE_GPU_CANCELLED = N_("job %(job)s (%(name)s) on %(cluster)s has kept its %(gpus)s GPU(s) idle for %(minutes)s "
                        "minutes: it was cancelled, as the platform's policy says")
JOB_ENDED = N_("job %(job)s (%(name)s) ended %(state)s on %(cluster)s; it cost %(cost)s.")  # job_notices.py
JOBS_ENDED = N_("%(count)s of your jobs ended")  # one e-mail for many job-ended notices (delivery.py)
TEMPLATES = (LOW_BALANCE, BLOCKED, UNBLOCKED, RESTORED, EXHAUSTED_BLOCK, EXHAUSTED_HOLD, EXHAUSTED_CANCEL, JOB_LOST,
             JOB_WITHDRAWN, IDLE_GPU, IDLE_GPU_CANCELLED, JOB_ENDED, JOBS_ENDED)
_MONEY = {"available", "threshold", "arrears", "cost"}
_AMOUNT = re.compile(r"(-?\d+(?:\.\d+)?)(?: ([A-Z]{3}))?")


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"%\((\w+)\)s", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)) + r"\Z",
                      re.S)


_PATTERNS = [(t, _pattern(t)) for t in TEMPLATES]


def said(message: str) -> Text | str:
    """A stored notice as the message it was made from (translatable), or the text itself if none fits."""
    for template, pattern in _PATTERNS:
        found = pattern.match(message)
        if found is None:
            continue
        params: dict = dict(found.groupdict())
        for name in _MONEY & params.keys():
            amount = _AMOUNT.fullmatch(params[name])
            try:
                if amount:
                    params[name] = Money(Decimal(amount.group(1)), amount.group(2), english=params[name])
            except InvalidOperation:
                pass
        made = msg(template, **params)
        if made == message:
            return made
    return message


def notify_user(session: Session, user: User, account: Account, kind: str, message: str, key: str,
                first_of_event: bool = True, channels: tuple[str, ...] | None = None) -> bool:
    """One notice to one user, said once per ``key``; False when it was said already. ``channels``:
    which deliveries go out with it (default: e-mail to the user and the account's webhook)."""
    from .delivery import enqueue  # e-mail and webhook go out with the notice (an outbox)

    try:
        with session.begin_nested():
            notice = Notification(user_id=user.id, account_id=account.id, kind=kind, message=message, key=key)
            session.add(notice)
            session.flush()
            enqueue(session, notice, user, account, first_of_event=first_of_event, channels=channels)
            session.flush()
        return True
    except IntegrityError:
        return False  # already told


def notify_members(session: Session, account: Account, kind: str, message: str, event: str) -> int:
    """One notice per member of the account for this event; returns how many were new."""
    made = 0
    for user in session.scalars(select(User).join(AccountMember, AccountMember.user_id == User.id)
                                .where(AccountMember.account_id == account.id).order_by(User.id)):
        if notify_user(session, user, account, kind, message, f"{event}:{user.id}", first_of_event=made == 0):
            made += 1
    return made


def set_threshold(session: Session, account: Account, amount: object | None) -> None:
    if amount is None:
        account.low_balance_threshold = None
        return
    try:
        value = to_decimal(amount)
    except MoneyError as exc:
        raise InvalidRequest(str(exc)) from None
    if value < 0 or value != value.quantize(to_decimal("0.01")):
        raise InvalidRequest(msg("a low-balance threshold is a non-negative amount in cents"))
    account.low_balance_threshold = value
    account.low_balance_notified = False
    session.flush()


@dataclass
class WatchReport:
    notified_accounts: int = 0
    notices: int = 0
    rearmed: int = 0


class BalanceWatch:
    """Every pass: accounts that fell below their threshold are told once; recovered ones re-armed."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> WatchReport:
        report = WatchReport()
        with self.platform.db.session() as session:
            for account in session.scalars(select(Account).where(Account.low_balance_threshold.is_not(None))):
                available = funds.funds(session, account).available
                if available < account.low_balance_threshold and not account.low_balance_notified:
                    # claimed in the row first: a second pass at once (a worker stalled past its lease
                    # while another took over) finds it claimed and says nothing (the key is per event)
                    if not _claim_low_notice(session, account):
                        continue
                    report.notices += notify_members(
                        session, account, "low_balance",
                        msg(LOW_BALANCE, account=account.name, available=Money(available, account.currency),
                            threshold=Money(account.low_balance_threshold)),
                        f"low:{account.id}:{uuid.uuid4().hex[:8]}")
                    report.notified_accounts += 1
                elif available >= account.low_balance_threshold and account.low_balance_notified:
                    account.low_balance_notified = False
                    report.rearmed += 1
        return report


def _claim_low_notice(session: Session, account: Account) -> bool:
    claimed = session.execute(update(Account).where(Account.id == account.id, Account.low_balance_notified.is_(False))
                              .values(low_balance_notified=True).execution_options(synchronize_session=False))
    if claimed.rowcount == 1:
        account.low_balance_notified = True  # what the row says now (the ORM copy is not refreshed)
        session.flush()
        return True
    return False


def for_user(session: Session, user: User, unread_only: bool = False, limit: int = 50) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(max(1, min(limit, 500)))))


def mark_read(session: Session, user: User, notification_id: int) -> Notification:
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user.id:
        raise NotFound(msg("no notification %(id)s", id=notification_id))
    row.read_at = row.read_at or utcnow()
    return row
