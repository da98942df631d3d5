"""The block-device medium's disk side: the device interface, the simulated asynchronous device, fault plans,
the I/O event log, the in-memory and real-file devices."""
