"""Connection plumbing shared by every protocol: TLS contexts, address checks."""
