"""The words of staff: employee levels, team kinds, team roles and the strategies by which a team
picks a customer's account manager (domain/routing/assignment.py). One home, read by the staff
services, routing, the seed data and the API (schema/enums.py checks its enums against it).
"""

EMPLOYEE_LEVELS = ("junior", "senior", "lead", "supervisor")
TEAM_KINDS = ("professional", "regional", "lifecycle", "general")
TEAM_ROLES = ("leader", "member")
TEAM_STRATEGIES = ("round_robin", "least_loaded", "manual")
# The strategies that pick a manager when routing places a customer (manual leaves it to a person).
AUTOMATIC_STRATEGIES = ("round_robin", "least_loaded")
# Strategies that compare every member's load; round_robin only checks a load against a capacity.
EVERY_LOAD_STRATEGIES = ("least_loaded",)
