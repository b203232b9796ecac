"""2. Sweep -> stage graph, pure: stage specs and folders, expand(), the manifest, selection."""
