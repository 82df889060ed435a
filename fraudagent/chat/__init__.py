"""Analyst chat about a case: a turn streams the agent's answer and stores question and answer (flows.py); sessions
are kept by `fraudagent.store.chats`; the SSE route is `fraudagent.api.chat`."""
