"""The composition root: one asyncio loop that builds every part, runs every LAG's LACP and
routes config, links and roles to it."""
