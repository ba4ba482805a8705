"""User accounts: tiers, API keys, passwords, sessions, WebSocket tickets and the audit trail."""
