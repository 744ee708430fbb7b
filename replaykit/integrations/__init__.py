"""Integrations built on the runtime's public API (CLI; HTTP, MCP and LLM come later)."""
