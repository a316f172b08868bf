"""Load generation with Locust, always in a child process (Locust patches the standard library)."""
