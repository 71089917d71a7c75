"""Facts about the TriFinger Pro hardware and its cube; no simulator imports."""
