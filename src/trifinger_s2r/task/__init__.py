"""The reposing MDP as pure functions over batched (num_envs, ...) tensors."""
