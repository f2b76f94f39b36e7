"""Customers: their rows and profiles, purchases, interactions and feedback, the metric columns
those keep, batch updates and CSV import/export.

records.py and vocabulary.py route nothing and sit below domain/routing/; every write here that
changes what the rules read (profiles, activity, batch, csv_import) routes the customer again through
domain/routing/realtime.py in the same transaction.
"""
