"""Where weights come from: cache files and digests, the resolver, DeepMind's release, downloads and the Hub."""
