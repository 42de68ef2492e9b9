"""cidbridge: a caller-ID bridge from serial modems and boxes to browsers, over Socket.IO."""

__version__ = "0.1.0"
