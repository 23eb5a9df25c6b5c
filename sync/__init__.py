"""twostep.sync: the reconciler that ends bypasses on time, repairs drift and enforces the policy."""
