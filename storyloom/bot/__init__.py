"""Chat adapters: Discord, Slack and the local console. Thin: no business rules."""
