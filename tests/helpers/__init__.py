"""Code shared by the test tiers: the LACP wire simulator, lab waits, recorders."""
