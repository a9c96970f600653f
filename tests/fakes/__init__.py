"""Fakes of the chat platforms as real local HTTP servers, used by the tests and benchmarks."""
