"""The I/O around the core on the browser side: Socket.IO, HTTP API, the panel."""
