"""Notify's store: its tables and every statement it runs on them.

Every statement is a function taking the caller's session: the caller decides the
transaction (the inbox transaction of a batch, one of the dispatcher's small ones), the
function states what the statement guards. By role:

- ``tables``: the tables, the message statuses, rows built without a statement;
- ``contacts``: addressees and notices waiting for a contact;
- ``messages``: queueing, a dossier's messages, retention;
- ``dispatch``: the dispatcher's claims, leases, outcomes and delivery reports;
- ``preferences``: opt-outs, trigger toggles, office heads.

Everything is re-exported here: callers write ``store.<name>``.
"""

from __future__ import annotations

from services.notify.store.contacts import (
    addressee,
    addressees,
    delete_ended_addressees,
    delete_waiting_before,
    ended_among,
    park_waiting,
    put_addressees,
    set_ended,
    take_waiting,
    waiting_keys,
    waiting_with_contact,
)
from services.notify.store.dispatch import (
    Outcome,
    claim_due,
    html_of,
    record_outcomes,
    release,
    renew_claimed,
    renew_lease,
    settle_lapsed,
    take_report,
)
from services.notify.store.messages import (
    insert_if_free,
    messages_of,
    purge_messages,
    queue_messages,
    stored_keys,
    supersede_lateness,
)
from services.notify.store.preferences import (
    add_opt_outs,
    delete_head,
    delete_opt_outs,
    heads_of,
    load_toggles,
    office_heads,
    opted_out,
    put_head,
    put_toggle,
    queued_to_citizens,
    suppress,
)
from services.notify.store.tables import (
    DELIVERED,
    FAILED,
    FINAL,
    PURGED,
    QUEUED,
    SENDING,
    SENT,
    STATUSES,
    SUPERSEDED,
    SUPPRESSED,
    TABLES,
    UNKNOWN,
    AddresseeRow,
    Message,
    MessageHtml,
    OfficeHead,
    OptOut,
    TriggerToggle,
    WaitingNotice,
    contact_target,
    dossier_target,
    email_to_head,
    head_email_values,
)

__all__ = [
    "DELIVERED",
    "FAILED",
    "FINAL",
    "PURGED",
    "QUEUED",
    "SENDING",
    "SENT",
    "STATUSES",
    "SUPERSEDED",
    "SUPPRESSED",
    "TABLES",
    "UNKNOWN",
    "AddresseeRow",
    "Message",
    "MessageHtml",
    "OfficeHead",
    "OptOut",
    "Outcome",
    "TriggerToggle",
    "WaitingNotice",
    "add_opt_outs",
    "addressee",
    "addressees",
    "claim_due",
    "contact_target",
    "delete_ended_addressees",
    "delete_head",
    "delete_opt_outs",
    "delete_waiting_before",
    "dossier_target",
    "email_to_head",
    "ended_among",
    "head_email_values",
    "heads_of",
    "html_of",
    "insert_if_free",
    "load_toggles",
    "messages_of",
    "office_heads",
    "opted_out",
    "park_waiting",
    "purge_messages",
    "put_addressees",
    "put_head",
    "put_toggle",
    "queue_messages",
    "queued_to_citizens",
    "record_outcomes",
    "release",
    "renew_claimed",
    "renew_lease",
    "set_ended",
    "settle_lapsed",
    "stored_keys",
    "supersede_lateness",
    "suppress",
    "take_report",
    "take_waiting",
    "waiting_keys",
    "waiting_with_contact",
]
