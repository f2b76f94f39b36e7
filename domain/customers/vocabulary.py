"""The words of customer activity: interaction and feedback kinds, feedback statuses and the
moves between them. One home, read by activity.py, metrics.py, the seed data and the API.
"""

INTERACTION_KINDS = ("visit", "call", "email", "message", "meeting")
FEEDBACK_KINDS = ("survey", "nps", "complaint", "suggestion", "praise")
FEEDBACK_STATUSES = ("open", "in_progress", "resolved", "closed")
OPEN_STATUSES = frozenset({"open", "in_progress"})
SCORE_RANGES: dict[str, tuple[int, int]] = {"survey": (1, 5), "nps": (0, 10)}
# Allowed status moves.  Resolved and closed feedback can be reopened (to `open`);
# closed is final otherwise.  Staying in the same status is always allowed (a no-op
# apart from the note), so retried calls are harmless.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "resolved", "closed"}),
    "in_progress": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset({"open"}),
}


def initial_status(kind: str) -> str:
    """Complaints start open (they need handling); every other kind starts closed."""
    return "open" if kind == "complaint" else "closed"
