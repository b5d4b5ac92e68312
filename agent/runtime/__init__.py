"""The running agent: daemon, scheduler and its clock, the runner that orders each run, watch
sessions, sharding, loop lag, GC policy, and the registries config is validated against."""
