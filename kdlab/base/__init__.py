"""Layer 0, the foundations: user-facing errors, the name registry, run configs and the settings table.
Names and numbers only (stdlib): everything here can travel through JSON, a URL or a CLI."""
