"""The sans-I/O protocol core: decoders and the call tracker.

Nothing in this package opens a port, a socket or a file, imports asyncio, or reads
a clock: callers pass bytes and the time in, and get frames and events back.  That
is what lets the core be tested exhaustively, fuzzed and benchmarked on its own.
"""
