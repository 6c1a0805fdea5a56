"""The Discord adapter (discord.py 2.x): the /story command group, status messages, buttons."""
