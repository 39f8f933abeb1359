"""The lifecycle contract lives in ticket_core so channels and bots can use it too; re-exported here."""

from ticket_core.lifecycle import Component, TaskGroup

__all__ = ["Component", "TaskGroup"]
