"""The two WebSocket connections a probe runs on, behind one interface."""
