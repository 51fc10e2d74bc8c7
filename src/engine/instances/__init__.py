"""Process instances: their lifecycle, children, timers and the stored results of auto steps."""
