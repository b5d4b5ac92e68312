"""The agent's HTTP side: the aiohttp server (metrics, health, probe, reload) and the JSON API."""
