"""The words of tasks: statuses and sources as stored (schema/enums.py shows them upper-case)."""

# OPEN until done or cancelled; at most one OPEN task per customer and kind (storage/models.py, Task).
TASK_STATUSES = ("open", "done", "cancelled")
OPEN, DONE, CANCELLED = TASK_STATUSES
# rule: made by `-> task KIND`; manual: createTask; system: made by Segmenta itself (e.g. the demo seed).
TASK_SOURCES = ("rule", "manual", "system")
# Days until a rule-made task is due when the action says no `within N days`.
DEFAULT_DUE_DAYS = 7
# The interaction kind completeTask records with the customer unless told another
# (INTERACTION_KINDS, domain/customers/vocabulary.py).
DEFAULT_COMPLETION_INTERACTION = "call"
