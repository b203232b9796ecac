"""3. Graph -> work: Ray Tune (searcher, trials, retries), the local runner of a trial, progress."""
