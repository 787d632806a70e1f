"""Development-only tools, served only while the simulated phone network runs."""
