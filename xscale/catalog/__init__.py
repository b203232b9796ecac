"""Named things every layer shares: the size table, the DeepSpeed recipes, memory estimates."""
