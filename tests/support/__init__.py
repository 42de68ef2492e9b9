"""Real parts for the tests: the daemon as a process, socket.io-client under Node, devices."""
