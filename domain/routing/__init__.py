"""Routing: rulesets and their versions, preview and apply runs (and the tasks that run them),
team and manager assignment, real-time routing of one changed customer, scheduled re-applies,
manual assignment and segments, and the explanation of a decision.
"""
