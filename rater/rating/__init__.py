"""Assignments, ratings, item scores, notes, homework log and consensus."""
