"""Device simulators: modems and caller-ID boxes on pseudo-terminals (demo and tests)."""
