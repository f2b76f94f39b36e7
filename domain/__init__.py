"""The domain: Segmenta's services and use cases, knowing nothing of GraphQL or HTTP.

customers/ (rows, profiles, activity, metrics, CSV), routing/ (rulesets, runs, assignment, real
time, scheduler, explanations, segments), staff/ (employees, teams) and access/ (tokens, an
agent's scope) build on the shared modules here: errors, validation, settings, events. seed.py
uses them all to make the demo data.
"""
