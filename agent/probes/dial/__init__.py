"""Opening a connection phase by phase: resolve, TCP, TLS, proxy, HTTP upgrade, OAuth2 tokens."""
