"""Audio: the cochleagram, speech corpus, word networks and their training."""
