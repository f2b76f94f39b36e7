"""Access: API tokens (hashed, with roles and expiry) and an agent's customer scope."""
