"""Who may drive the LAGs: the pure role machine, readiness and replay, the hot standby's
liveness rules, and the driver that executes their effects against Redis and the runner."""
