"""What the run did: analyze, report."""
