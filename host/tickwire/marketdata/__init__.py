"""Market-data distribution: multicast publisher, re-request and snapshot servers,
subscriber books (L1/L2/L3), the retail WebSocket server, and the ``tickwire feed`` commands."""
