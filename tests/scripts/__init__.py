"""The pod scripts against real Redis and Sentinel processes on loopback addresses."""
