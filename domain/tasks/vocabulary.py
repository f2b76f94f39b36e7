"""The words of tasks: statuses and sources as stored (schema/enums.py shows them upper-case)."""

# OPEN until done or cancelled; at most one OPEN task per customer and kind (storage/models.py, Task).
TASK_STATUSES = ("open", "done", "cancelled")
OPEN, DONE, CANCELLED = TASK_STATUSES
# rule: made by `-> task KIND`; manual: createTask; system: made by Segmenta itself (e.g. the demo seed).
TASK_SOURCES = ("rule", "manual", "system")
# The interaction kind completeTask records with the customer unless told another
# (INTERACTION_KINDS, domain/customers/vocabulary.py).
DEFAULT_COMPLETION_INTERACTION = "call"
