"""Rule-based verifiable rewards (filled by the rewards issue)."""
