"""Follow-up tasks: a customer's to-dos for their manager or team (create, complete, cancel,
reassign, read within the caller's scope).  Rule-made tasks are written by the routing runs and
real-time routing (the rule action `-> task KIND`); this package owns the manual life cycle.
"""
