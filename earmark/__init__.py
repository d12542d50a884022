"""earmark: real-time metering plugin host for mastering engineers."""
