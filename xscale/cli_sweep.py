"""Subcommands for whole studies: sweep, plan, status, analyze."""

from __future__ import annotations


def add_subcommands(sub) -> None:
    return None
