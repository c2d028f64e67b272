"""Sprints: a spec's task planned, coded and verified by an agent, in the background.

``handlers`` holds the use cases; ``scheduler`` runs sprints in this process and takes over those
whose process died; ``phase_runner`` is the workflow (Discovery → Coding → Verification);
``tool_loop`` the agent with workspace tools; ``prompts`` what the agents are told; ``workflow``
what these share (dependencies, fenced writes, how a phase fails).
"""
