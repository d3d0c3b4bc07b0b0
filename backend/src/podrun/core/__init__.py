"""The shared value types every layer speaks: limits, statuses, output streams and domain errors."""
