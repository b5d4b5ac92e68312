"""The running agent: daemon, scheduler, the runner that orders each run, sharding, loop lag."""
