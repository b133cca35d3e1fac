"""Study results: descriptives and multilevel models of the course over sessions."""
