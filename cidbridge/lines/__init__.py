"""The I/O around the core on the device side: serial ports, modem dialogue, line upkeep."""
