"""Scripted exchanges: steps, receiving with predicates, matchers and variables."""
