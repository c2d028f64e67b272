"""Sprints: a spec's task planned, coded and verified by an agent, in the background.

``handlers`` holds the use cases; ``phase_runner`` is the workflow (Discovery → Coding →
Verification), which ``crucible_common.leases.Workers`` runs in this process's background, taking
over sprints whose process died;
``tool_loop`` the agent with workspace tools; ``prompts`` what the agents are told; ``workflow``
what these share (dependencies, fenced writes, how a phase fails).
"""
