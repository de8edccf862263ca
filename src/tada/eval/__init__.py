"""Evaluation harness: multiple-choice QA datasets, prompts and scoring (SPEC §9)."""
