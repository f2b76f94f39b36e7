"""The words of routing: ruleset statuses, run modes and statuses, and the causes of an assignment
change. One home, read by the routing services, the command line and the API (schema/enums.py
checks its enums against it).
"""

# DRAFT when saved, ACTIVE when activated (one at a time), ARCHIVED when replaced.
RULESET_STATUSES = ("draft", "active", "archived")
RUN_MODES = ("preview", "apply", "realtime")
RUN_STATUSES = ("running", "succeeded", "failed")
ASSIGNMENT_CAUSES = ("run", "realtime", "manual")
